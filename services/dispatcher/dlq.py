"""``signalbox dlq list|replay``: look at dead-lettered commands and send them again.

Replay semantics, for operators:

* ``replay`` writes each selected dead letter's original command, byte for byte,
  back to ``actions.commands`` (same key, same partition) with a header
  ``signalbox-replay: <dlq partition>:<dlq offset>``.
* The dispatcher keeps a separate ledger entry per replay id, so a replayed
  ``failed`` or ``in_doubt`` command is attempted once more even though the
  command id already has an outcome; its new outcome goes to ``actions.results``
  (and, if it fails again, a new dead letter, which can be replayed in turn).
* Replaying the same dead letter twice (a retried ``replay``, two operators) sends
  nothing the second time: the replay id is already in the ledger.
* ``in_doubt`` commands may have been delivered already; replaying one is the
  operator's decision to risk a duplicate. Unreadable records cannot be replayed.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from signalbox.common import schemas
from signalbox.common.clock import epoch_ms, now_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.kafka import librdkafka_config
from signalbox.common.registry import codec_for
from signalbox.common.settings import Settings, SettingsError
from signalbox.common.topics import ACTIONS_COMMANDS, ACTIONS_DLQ
from signalbox.dispatcher.model import CommandError, command_from_record
from signalbox.dispatcher.policy.retry import REPLAY

HELP = (__doc__ or "").replace("``", "")
_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Letter:
    partition: int
    offset: int
    failed_at: int
    key: bytes | None
    value: bytes | None
    error_type: str
    reason: str
    command_id: str = ""
    customer_id: str = ""
    channel: str = ""

    @property
    def replay_id(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def replayable(self) -> bool:
        return bool(self.command_id)


def parse_since(text: str, now: int) -> int:
    """Epoch ms from ``2026-11-22T09:00:00Z``, ``2026-11-22`` (UTC) or ``90m``, ``2h``, ``7d``."""
    m = _RELATIVE.match(text.strip())
    if m:
        delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
        return now - int(delta.total_seconds() * 1000)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SettingsError(f"--since: expected an ISO 8601 time or an age like 2h or 7d, "
                            f"got {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return epoch_ms(when.astimezone(UTC))


def read_letters(settings: Settings, codec: AvroCodec, since_ms: int = 0) -> Iterator[Letter]:
    """Every dead letter on ``actions.dlq`` now (read_committed), oldest first per partition."""
    k = settings.kafka
    topic = k.topic(ACTIONS_DLQ)
    consumer = Consumer({**librdkafka_config(k), "group.id": "signalbox-dlq-cli",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        parts = range(k.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in parts}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts
                         if ends[p] > 0])
        remaining = {p for p in parts if ends[p] > 0}
        while remaining:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                raise RuntimeError(f"reading {topic}: {msg.error()}")
            if msg is not None:
                letter = _letter(codec, msg.partition() or 0, msg.offset() or 0, msg.value())
                if letter is not None and letter.failed_at >= since_ms:
                    yield letter
            # Positions, not record offsets: transaction markers take offsets too.
            for tp in consumer.position([TopicPartition(topic, p) for p in remaining]):
                if tp.offset >= ends[tp.partition]:
                    remaining.discard(tp.partition)
    finally:
        consumer.close()


def _letter(codec: AvroCodec, partition: int, offset: int, raw: bytes | None) -> Letter | None:
    if raw is None:
        return None
    try:
        d: dict[str, Any] = codec.decode(schemas.DEAD_LETTER, raw)
    except DecodeError:
        return Letter(partition, offset, 0, None, None, "unreadable", "dead letter unreadable")
    base = Letter(partition, offset, epoch_ms(d["failed_at"]), d["key"], d["value"],
                  d["error_type"], d["reason"])
    try:
        command = command_from_record(codec.decode(schemas.ACTION_COMMAND, d["value"] or b""))
    except (DecodeError, CommandError, KeyError):  # kept as it is, but not replayable
        return base
    return Letter(partition, offset, base.failed_at, d["key"], d["value"], d["error_type"],
                  d["reason"], command.command_id, command.customer_id, command.channel)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def print_table(letters: list[Letter], out: TextIO) -> None:
    rows = [("WHEN", "DLQ", "COMMAND", "CUSTOMER", "CHANNEL", "REASON")]
    rows += [(_when(x.failed_at), x.replay_id, x.command_id or "-", x.customer_id or "-",
              x.channel or "-", " ".join(x.reason.split())[:100]) for x in letters]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " +
                  r[5] + "\n")


def replay(settings: Settings, letters: list[Letter], dry_run: bool, out: TextIO) -> int:
    """Write the replayable letters' commands back; the number written (or to be written)."""
    chosen = [x for x in letters if x.replayable]
    for x in letters:
        if not x.replayable:
            out.write(f"skip {x.replay_id}: not a readable command ({x.reason})\n")
    if dry_run:
        print_table(chosen, out)
        out.write(f"dry run: would replay {len(chosen)} command(s)\n")
        return len(chosen)
    k = settings.kafka
    producer = Producer({**librdkafka_config(k), "enable.idempotence": True, "acks": "all"})
    errors: list[str] = []

    def delivered(err: Any, _: Any) -> None:
        if err is not None:
            errors.append(str(err))

    for x in chosen:
        producer.produce(k.topic(ACTIONS_COMMANDS), key=x.key, value=x.value,
                         partition=x.partition, headers=[(REPLAY, x.replay_id.encode())],
                         on_delivery=delivered)
    left = producer.flush(30)
    if left or errors:
        raise RuntimeError(f"replay incomplete: {left} not acknowledged; errors: {errors}")
    for x in chosen:
        out.write(f"replayed {x.replay_id} command {x.command_id} ({x.channel}, "
                  f"{x.customer_id})\n")
    out.write(f"replayed {len(chosen)} command(s)\n")
    return len(chosen)


def add_parser(sub: Any) -> None:
    """The ``dlq`` subcommand of ``signalbox``."""
    dlq = sub.add_parser("dlq", help="list or replay dead-lettered commands (actions.dlq)",
                         description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = dlq.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="a table: when, DLQ position, command, customer, "
                            "channel, reason")
    ls.add_argument("--since", help="only letters from then on (ISO 8601, or an age: 2h, 7d)")
    ls.add_argument("--limit", type=int, default=100, help="at most N, the newest (default 100)")
    rp = actions.add_parser("replay", help="send dead-lettered commands again (see dlq --help)",
                            description=HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    rp.add_argument("--since", help="only letters from then on (ISO 8601, or an age: 2h, 7d)")
    rp.add_argument("--dry-run", action="store_true", help="show what would be replayed")


def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    codec = codec_for(settings)
    since = parse_since(args.since, now_ms()) if args.since else 0
    letters = sorted(read_letters(settings, codec, since), key=lambda x: x.failed_at)
    if args.action == "list":
        print_table(letters[-args.limit:] if args.limit > 0 else letters, out)
        return 0
    replay(settings, letters, args.dry_run, out)
    return 0
