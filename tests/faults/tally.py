"""Counting per command id after a fault: lost, duplicated, in doubt.

* lost: an expected command with no outcome on ``actions.results``, or ``delivered``
  with no message at the SMTP sink;
* duplicated: a command with more than one outcome, or more than one message;
* in doubt: an outcome ``in_doubt`` (the process died between recording the attempt
  and the outcome: never resent, dead-lettered for an operator to decide);
* unexpected: an outcome or a message for a command the events do not cause.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import Consumer

from signalbox.common import schemas
from signalbox.common.codec import AvroCodec
from signalbox.common.settings import Settings
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    ACTIONS_DLQ,
    ACTIONS_LEDGER,
    ACTIONS_RESULTS,
)
from signalbox.testing.smtp import SmtpSink
from tests.support.kafka import drain

codec = AvroCodec()


@dataclass(frozen=True)
class Tally:
    expected: frozenset[str]
    outcomes: dict[str, tuple[str, ...]]  # command id -> its statuses on actions.results
    mails: Counter[str]  # command id -> messages the sink received
    dead_lettered: frozenset[str]  # command ids on actions.dlq
    ledger: dict[str, tuple[tuple[str, datetime], ...]]  # command id -> (state, at), in order

    @property
    def lost(self) -> set[str]:
        return set(self.expected - self.outcomes.keys()) | {
            cid for cid, s in self.outcomes.items() if "delivered" in s and not self.mails[cid]}

    @property
    def duplicated(self) -> set[str]:
        return {cid for cid, s in self.outcomes.items() if len(s) > 1} | \
            {cid for cid, n in self.mails.items() if n > 1}

    @property
    def in_doubt(self) -> set[str]:
        return {cid for cid, s in self.outcomes.items() if "in_doubt" in s}

    @property
    def unexpected(self) -> set[str]:
        return (self.outcomes.keys() | self.mails.keys()) - self.expected

    @property
    def statuses(self) -> Counter[str]:
        return Counter(s for statuses in self.outcomes.values() for s in statuses)

    def line(self, fault: str, since: float) -> str:
        """The counts, and the seconds from the fault (``since``, monotonic) to now."""
        return (f"{fault}: {len(self.expected)} commands, lost {len(self.lost)}, duplicated "
                f"{len(self.duplicated)}, in doubt {len(self.in_doubt)} "
                f"(outcomes {dict(sorted(self.statuses.items()))}, "
                f"mails {sum(self.mails.values())}; counted {time.monotonic() - since:.0f} s "
                f"after the fault)")

    def check(self) -> None:
        """0 lost, 0 duplicated, nothing unexpected; each in-doubt command dead-lettered
        and mailed at most once (it may or may not have reached the relay)."""
        assert not self.lost, f"lost: {sorted(self.lost)[:10]}"
        assert not self.duplicated, f"duplicated: {sorted(self.duplicated)[:10]}"
        assert not self.unexpected, f"unexpected: {sorted(self.unexpected)[:10]}"
        assert set(self.statuses) <= {"delivered", "in_doubt"}, self.statuses
        assert self.in_doubt <= self.dead_lettered, \
            f"in doubt, not dead-lettered: {sorted(self.in_doubt - self.dead_lettered)}"
        assert all(n <= 1 for cid, n in self.mails.items() if cid in self.in_doubt)

    def check_in_doubt_across(self, *deaths: datetime) -> None:
        """Every in-doubt command was last attempted before one of ``deaths`` (a kill,
        an exit) and found 'attempting' after it, with no outcome between: the process
        died between its attempt and its outcome."""
        for cid in self.in_doubt:
            history = self.ledger.get(cid, ())
            states = [state for state, _ in history]
            assert states[-1:] == ["in_doubt"] and set(states[:-1]) == {"attempting"}, \
                (cid, history)
            (_, attempted), (_, decided) = history[-2:]
            assert any(attempted <= death <= decided for death in deaths), \
                (cid, history, deaths)


def outcomes_by_command(settings: Settings, expected: frozenset[str],
                        timeout: float) -> dict[str, list[str]]:
    """Read ``actions.results`` until every expected command has an outcome (or
    ``timeout`` passed), then until no record came for 3 s: a late copy counts too."""
    k = settings.kafka
    c = Consumer({"bootstrap.servers": k.bootstrap_servers,
                  "group.id": f"faults-{uuid.uuid4().hex}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "isolation.level": "read_committed"})
    c.subscribe([k.topic(ACTIONS_RESULTS)])
    out: dict[str, list[str]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()

    def reading() -> bool:
        waiting = not expected <= out.keys() and time.monotonic() < deadline
        return waiting or time.monotonic() - quiet_since < 3.0

    try:
        while reading():
            msg = c.poll(0.25)
            if msg is None or msg.error():
                continue
            quiet_since = time.monotonic()
            result = codec.decode(schemas.ACTION_RESULT, msg.value())
            out[result["command_id"]].append(result["status"])
    finally:
        c.close()
    return out


def tally(settings: Settings, expected: set[str], smtp: SmtpSink,
          timeout: float = 90.0) -> Tally:
    """Count once every expected command has an outcome (or ``timeout`` passed)."""
    wanted = frozenset(expected)
    outcomes = outcomes_by_command(settings, wanted, timeout)
    k = settings.kafka
    letters = [codec.decode(schemas.DEAD_LETTER, r.value)
               for r in drain(k.bootstrap_servers, k.topic(ACTIONS_DLQ), settle=1.0)]
    dead = frozenset(codec.decode(schemas.ACTION_COMMAND, d["value"])["command_id"]
                     for d in letters if d["value"])
    mails = Counter(str(m.message["X-Signalbox-Command-Id"]) for m in list(smtp.messages))
    ledger: dict[str, list[tuple[str, datetime]]] = defaultdict(list)
    for r in drain(k.bootstrap_servers, k.topic(ACTIONS_LEDGER), settle=1.0):
        if r.value is not None:  # a tombstone retracts an attempt that sent nothing
            entry = codec.decode(schemas.LEDGER_ENTRY, r.value)
            ledger[entry["command_id"]].append((entry["state"], entry["at"]))
    return Tally(wanted, {cid: tuple(s) for cid, s in outcomes.items()}, mails, dead,
                 {cid: tuple(h) for cid, h in ledger.items()})


def commands_written(settings: Settings) -> tuple[int, int]:
    """``(records, distinct command ids)`` on ``actions.commands``: more records than ids
    show that inputs were evaluated again after a fault (at least once) and issued the
    same commands, ids included."""
    k = settings.kafka
    ids = [codec.decode(schemas.ACTION_COMMAND, r.value)["command_id"]
           for r in drain(k.bootstrap_servers, k.topic(ACTIONS_COMMANDS), settle=1.0)]
    return len(ids), len(set(ids))
