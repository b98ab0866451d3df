"""signalbox.testing's waits: both answer the first result that is done, or the last
one seen when the time is up (the caller asserts on it), by the same rule."""

from __future__ import annotations

import itertools
import time

from signalbox.testing import eventually, eventually_sync, http_answer


def test_the_first_done_result_is_answered_at_once() -> None:
    counter = itertools.count()
    assert eventually_sync(lambda: next(counter), lambda n: n >= 3, every_s=0.001) == 3
    assert next(counter) == 4  # no probe after the answer


def test_the_last_result_is_answered_when_the_time_is_up() -> None:
    counter = itertools.count()
    started = time.monotonic()
    last = eventually_sync(lambda: next(counter), lambda n: n < 0, within_s=0.2, every_s=0.05)
    assert 0.2 <= time.monotonic() - started < 2
    assert last == next(counter) - 1 and last >= 2


async def test_the_async_wait_follows_the_same_rule() -> None:
    counter = itertools.count()

    async def probe() -> int:
        return next(counter)

    assert await eventually(probe, lambda n: n >= 3, every_s=0.001) == 3
    assert await eventually(probe, lambda n: n < 0, within_s=0.05, every_s=0.01) > 4


def test_no_answer_is_a_reason_not_an_exception() -> None:
    status, why = http_answer("http://127.0.0.1:9/", timeout_s=1)
    assert status is None and "ConnectError" in why
