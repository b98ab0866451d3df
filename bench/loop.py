"""The bare aiokafka consume → produce loop, the floor the evaluator is compared with.

    python -m bench.loop GROUP OUT_TOPIC [--codec]

Reads ``events.billing`` and ``events.usage`` (``SIGNALBOX_TOPIC_PREFIX``) from the
start with consumer group GROUP: ``getmany`` (500 records at most), one send per
record without awaiting it, await the batch's acks, commit. With ``--codec`` each
value is decoded as an Event with the project's ``AvroCodec`` and one output record
encoded from it.
Runs until SIGTERM; ``bench.evaluator`` reads its progress from the group's offsets.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from signalbox.common import schemas
from signalbox.common.kafka import aiokafka_options
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings
from signalbox.common.topics import EVENTS_BILLING, EVENTS_USAGE

#: Producer batches, as the tuned Faust agent's (bench.faust_agent). No linger: the loop
#: awaits each batch's acks, so a linger would only add to every batch's round trip.
BATCH_BYTES = 256 * 1024
#: Records per batch, as the Faust agent's ``take_events``.
BATCH_RECORDS = 500


async def run(settings: Settings, group: str, out: str, with_codec: bool) -> None:
    k = settings.kafka
    codec = codec_for(settings.registry) if with_codec else None
    consumer = AIOKafkaConsumer(k.topic(EVENTS_BILLING), k.topic(EVENTS_USAGE), group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                **aiokafka_options(k))
    producer = AIOKafkaProducer(acks="all", linger_ms=0, max_batch_size=BATCH_BYTES,
                                **aiokafka_options(k))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await consumer.start()
    await producer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200, max_records=BATCH_RECORDS)
            acks = []
            for records in batches.values():
                for r in records:
                    value = r.value
                    if codec is not None:
                        value = codec.encode(schemas.EVENT, codec.decode(schemas.EVENT, value))
                    acks.append(await producer.send(out, value, key=r.key))
            if acks:
                await asyncio.gather(*acks)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("group")
    parser.add_argument("out_topic")
    parser.add_argument("--codec", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(Settings.from_env(), args.group, args.out_topic, args.codec))


if __name__ == "__main__":
    main()
