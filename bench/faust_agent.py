"""A tuned minimal Faust agent doing the trivial stateful job: the framework's limit.

    python -m bench.faust_agent APP_ID OUT_TOPIC

Reads ``events.billing`` and ``events.usage`` (``SIGNALBOX_TOPIC_PREFIX``) from the
start as consumer group APP_ID; per event it reads the customer's dict from a Table
(memory store), updates it, writes it back and sends one record. Tuned as far as
Faust goes: producer linger 20 ms and 256 KiB batches, ``take_events(500)``,
logging at WARNING. Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import tempfile
from typing import Any, cast

import faust

from bench.loop import BATCH_BYTES, BATCH_RECORDS
from signalbox.common.kafka import faust_broker, faust_credentials
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE

LINGER_MS = 20


def create_app(settings: Settings, app_id: str, out_topic: str, data_dir: str) -> faust.App:
    k = settings.kafka
    app = faust.App(
        app_id, broker=faust_broker(k), broker_credentials=faust_credentials(k),
        store="memory://", datadir=data_dir, processing_guarantee="at_least_once",
        topic_partitions=k.partitions, topic_replication_factor=k.replication_factor,
        key_serializer="raw", value_serializer="raw", web_enabled=False,
        producer_acks=-1, producer_linger=LINGER_MS / 1000, producer_max_batch_size=BATCH_BYTES,
    )
    source = app.topic(k.topic(EVENTS_BILLING), k.topic(EVENTS_USAGE), key_type=bytes,
                       value_type=bytes, partitions=k.partitions)
    out = app.topic(out_topic, key_type=bytes, value_type=bytes, partitions=k.partitions)
    # str keys, dict values (json); use_partitioner: written outside stream iteration
    table = app.Table("bench-state", partitions=k.partitions, use_partitioner=True)

    @app.agent(source)
    async def job(stream: faust.StreamT[bytes]) -> None:
        batches = cast(faust.Stream[bytes], stream).take_events(BATCH_RECORDS, within=0.05)
        async for batch in batches:  # take_events is on Stream only, not on StreamT
            for event in batch:
                key = event.key or b""
                state: dict[str, Any] = table.get(key.decode()) or {"seen": 0}
                state["seen"] += 1
                state["offset"] = event.message.offset
                table[key.decode()] = state
                await out.send(key=key, value=event.value)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("app_id")
    parser.add_argument("out_topic")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(Settings.from_env(), args.app_id, args.out_topic, data_dir)
        faust.Worker(app, loglevel="warning", quiet=True,
                     redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    main()
