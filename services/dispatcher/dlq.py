"""``signalbox dlq list|replay``: look at dead letters and send them again.

Two dead-letter topics, chosen with ``--topic``:

* ``actions.dlq`` (default): commands the dispatcher could not carry out. ``replay``
  writes the original command, byte for byte, back to ``actions.commands`` (same key
  and partition) with a header ``signalbox-replay: <dlq partition>:<dlq offset>``.
  The dispatcher keeps a separate ledger entry per replay id, so a replayed
  ``failed`` or ``in_doubt`` command is attempted once more; if it fails again it
  becomes a new dead letter, which can be replayed in turn. ``in_doubt`` commands
  may have been delivered already: replaying one is the operator's decision to
  risk a duplicate.
* ``events.dlq``: input records the evaluator could not process. ``replay`` writes an
  event that reads as an event now (the cause was fixed: a schema registered, an
  engine bug fixed) back to its source topic and partition. Tick failures, oversized
  commands and states are not replayable (a customer's next event re-arms its timer).

Each replay is marked on the ``dlq.replays`` topic in the same transaction as the
record it writes: a letter already marked is not sent again (``already replayed``,
with when and by whom), so a retried or concurrent ``replay`` is a no-op for it.
Letters that are unreadable or truncated cannot be replayed.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from signalbox.common import schemas
from signalbox.common.action_command import CommandError, command_from_record
from signalbox.common.clock import epoch_ms, now_ms
from signalbox.common.codec import AvroCodec, DecodeError
from signalbox.common.registry import codec_for
from signalbox.common.replays import Mark, Replayer, Write, mark_key, read_marks, read_to_end
from signalbox.common.settings import Settings, SettingsError
from signalbox.common.topics import (
    ACTIONS_COMMANDS,
    ACTIONS_DLQ,
    EVENTS_BILLING,
    EVENTS_DLQ,
    EVENTS_USAGE,
    wait_for_broker,
)
from signalbox.dispatcher.policy.retry import REPLAY

HELP = (__doc__ or "").replace("``", "")
TOPICS = (ACTIONS_DLQ, EVENTS_DLQ)
_RELATIVE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Letter:
    """One dead letter, with what it holds and where a replay would write it."""

    topic: str  # logical dead-letter topic
    partition: int
    offset: int
    failed_at: int
    service: str
    source_topic: str
    key: bytes | None
    value: bytes | None
    error_type: str
    reason: str
    item_id: str = ""  # command id or event id
    customer_id: str = ""
    kind: str = ""  # channel or event type
    target: tuple[str, int] | None = None  # (physical topic, partition) a replay writes to
    why_not: str = ""  # why it cannot be replayed

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    @property
    def mark_key(self) -> str:
        return mark_key(self.topic, self.partition, self.offset)


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


def read_letters(settings: Settings, codec: AvroCodec, topic: str = ACTIONS_DLQ,
                 since_ms: int = 0) -> Iterator[Letter]:
    """Every dead letter on ``topic`` now (read_committed), oldest first per partition."""
    k = settings.kafka
    for msg in read_to_end(k, k.topic(topic), k.partitions):
        raw = msg.value()
        if raw is None:
            continue
        letter = parse_letter(settings, codec, topic, msg.partition() or 0, msg.offset() or 0,
                              raw)
        if letter.failed_at >= since_ms:
            yield letter


def parse_letter(settings: Settings, codec: AvroCodec, topic: str, partition: int,
                 offset: int, raw: bytes) -> Letter:
    """What a dead letter holds; where a replay writes it, or why it cannot."""
    try:
        d: dict[str, Any] = codec.decode(schemas.DEAD_LETTER, raw)
    except DecodeError as exc:
        return Letter(topic, partition, offset, 0, "", "", None, None, "unreadable",
                      f"dead letter unreadable: {exc}", why_not="the dead letter is unreadable")
    base = Letter(topic, partition, offset, epoch_ms(d["failed_at"]), d["service"],
                  d["source_topic"], d["key"], d["value"], d["error_type"], d["reason"])
    if topic == ACTIONS_DLQ:
        return _command_letter(settings, codec, base)
    return _event_letter(settings, codec, base)


def _command_letter(settings: Settings, codec: AvroCodec, base: Letter) -> Letter:
    try:
        command = command_from_record(codec.decode(schemas.ACTION_COMMAND, base.value or b""))
    except (DecodeError, CommandError, KeyError):  # kept as it is, but not replayable
        return replace(base, why_not="not a readable command (unreadable or truncated)")
    return replace(base, item_id=command.command_id, customer_id=command.customer_id,
                 kind=command.channel,
                 target=(settings.kafka.topic(ACTIONS_COMMANDS), base.partition))


def _event_letter(settings: Settings, codec: AvroCodec, base: Letter) -> Letter:
    k = settings.kafka
    if base.source_topic not in (k.topic(EVENTS_BILLING), k.topic(EVENTS_USAGE)):
        return replace(base, why_not=f"from {base.source_topic}, not an events topic (a tick's "
                                   "or an output's failure: nothing to send again)")
    try:
        record = codec.decode(schemas.EVENT, base.value or b"")
        record_name = record["payload"][0]
        event_type = schemas.event_type_by_record().get(record_name, record_name)
    except (DecodeError, KeyError, TypeError, IndexError) as exc:
        return replace(base, why_not=f"still not a readable event: {exc}")
    customer = str(record["customer_id"])
    if base.key != customer.encode("utf-8"):
        return replace(base, item_id=str(record["event_id"]), customer_id=customer,
                     kind=event_type, why_not="its Kafka key is not its customer_id")
    # The evaluator letters an input on the input's own partition.
    return replace(base, item_id=str(record["event_id"]), customer_id=customer, kind=event_type,
                 target=(base.source_topic, base.partition))


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _replayed(mark: Mark | None) -> str:
    return f"{_when(mark.replayed_at)} by {mark.replayed_by}" if mark else "-"


def print_table(topic: str, letters: list[Letter], marks: dict[str, Mark], out: TextIO) -> None:
    """One line per letter; the reason last and whole (whitespace runs made one space)."""
    item, kind = ("COMMAND", "CHANNEL") if topic == ACTIONS_DLQ else ("EVENT", "TYPE")
    rows = [("WHEN", "DLQ", item, "CUSTOMER", kind, "REPLAYED", "REASON")]
    rows += [(_when(x.failed_at), x.position, x.item_id or "-", x.customer_id or "-",
              x.kind or "-", _replayed(marks.get(x.mark_key)), " ".join(x.reason.split()))
             for x in letters]
    widths = [max(len(r[i]) for r in rows) for i in range(6)]
    for r in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " +
                  r[6] + "\n")


def as_json(letter: Letter, mark: Mark | None) -> dict[str, Any]:
    """A letter as ``dlq list --json`` prints it (no payload bytes: they may be personal)."""
    return {
        "dead_letter_topic": letter.topic, "partition": letter.partition,
        "offset": letter.offset, "failed_at": _when(letter.failed_at),
        "service": letter.service, "source_topic": letter.source_topic,
        "error_type": letter.error_type, "reason": letter.reason,
        ("command_id" if letter.topic == ACTIONS_DLQ else "event_id"): letter.item_id or None,
        "customer_id": letter.customer_id or None,
        ("channel" if letter.topic == ACTIONS_DLQ else "event_type"): letter.kind or None,
        "replayable": letter.target is not None,
        "not_replayable_because": letter.why_not or None,
        "replayed": None if mark is None else {
            "at": _when(mark.replayed_at), "by": mark.replayed_by, "to": mark.target_topic},
    }


@dataclass(frozen=True)
class Replayed:
    """What one ``replay`` did with each letter it read."""

    replayed: tuple[Letter, ...]
    already: tuple[tuple[Letter, Mark], ...]
    skipped: tuple[Letter, ...]


def choose(letters: list[Letter], marks: dict[str, Mark]
           ) -> tuple[list[Letter], list[tuple[Letter, Mark]], list[Letter]]:
    """Split letters into to replay, already replayed (with their mark), not replayable."""
    todo, already, skipped = [], [], []
    for x in letters:
        mark = marks.get(x.mark_key)
        if x.target is None:
            skipped.append(x)
        elif mark is not None:
            already.append((x, mark))
        else:
            todo.append(x)
    return todo, already, skipped


def _write(x: Letter, by: str, at: int) -> Write:
    assert x.target is not None
    topic, partition = x.target
    headers = ((REPLAY, x.position.encode()),) if x.topic == ACTIONS_DLQ else ()
    return Write(topic, partition, x.key, x.value, headers,
                 Mark(x.topic, x.partition, x.offset, topic, at, by))


def replay(settings: Settings, codec: AvroCodec, topic: str, since_ms: int, dry_run: bool,
           by: str, out: TextIO) -> Replayed:
    """Replay every unmarked replayable letter of ``topic`` from ``since_ms`` on; report
    each letter and what happened to it."""
    def plan(marks: dict[str, Mark]) -> tuple[list[Letter], list[tuple[Letter, Mark]],
                                              list[Letter]]:
        return choose(sorted(read_letters(settings, codec, topic, since_ms),
                             key=lambda x: x.failed_at), marks)

    if dry_run:  # reads only: a replay running elsewhere is not fenced by a look
        todo, already, skipped = plan(read_marks(settings.kafka, codec))
    else:
        with Replayer(settings.kafka, codec) as replayer:
            # The marks after fencing any other replay (see common.replays).
            todo, already, skipped = plan(replayer.marks())
            at = now_ms()
            replayer.write([_write(x, by, at) for x in todo])
    verb = "would replay" if dry_run else "replayed"
    what = "command" if topic == ACTIONS_DLQ else "event"
    for x in skipped:
        out.write(f"not replayable {x.position}: {x.why_not} ({' '.join(x.reason.split())})\n")
    for x, mark in already:
        out.write(f"already replayed {x.position} {what} {x.item_id} at "
                  f"{_replayed(mark)}: not sent again\n")
    for x in todo:
        out.write(f"{verb} {x.position} {what} {x.item_id} ({x.kind}, {x.customer_id}) "
                  f"to {x.target[0] if x.target else '?'}\n")
    out.write(f"{'dry run: ' if dry_run else ''}{verb} {len(todo)} {what}(s); "
              f"{len(already)} already replayed (no-op); {len(skipped)} not replayable\n")
    return Replayed(tuple(todo), tuple(already), tuple(skipped))


def add_parser(sub: Any) -> None:
    """The ``dlq`` subcommand of ``signalbox``."""
    dlq = sub.add_parser("dlq", help="list or replay dead letters (actions.dlq, events.dlq)",
                         description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = dlq.add_subparsers(dest="action", required=True)
    ls = actions.add_parser("list", help="a table: when, DLQ position, command or event, "
                            "customer, channel or type, replayed, the whole reason")
    rp = actions.add_parser("replay", help="send dead letters again (see dlq --help)",
                            description=HELP,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    for p in (ls, rp):
        p.add_argument("--topic", choices=TOPICS, default=ACTIONS_DLQ,
                       help="which dead-letter topic (default actions.dlq)")
        p.add_argument("--since", help="only letters from then on (ISO 8601, or an age: 2h, 7d)")
        p.add_argument("--wait", type=float, default=15.0, metavar="SECONDS",
                       help="how long to wait for the broker to answer (default 15)")
    ls.add_argument("--limit", type=int, default=100, help="at most N, the newest (default 100; "
                                                           "0: all)")
    ls.add_argument("--json", action="store_true", help="a JSON array instead of the table")
    rp.add_argument("--dry-run", action="store_true", help="show what would be replayed")
    rp.add_argument("--by", help="who replays (default: the OS user), kept on each mark")


def run(settings: Settings, args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    # First, so an unreachable broker is one clear error naming it (the consumer would
    # print librdkafka's connection failures raw, then fail vaguely).
    wait_for_broker(settings.kafka, timeout_s=args.wait)
    codec = codec_for(settings.registry)
    since = parse_since(args.since, now_ms()) if args.since else 0
    if args.action == "replay":
        replay(settings, codec, args.topic, since, args.dry_run, args.by or getpass.getuser(),
               out)
        return 0
    letters = sorted(read_letters(settings, codec, args.topic, since), key=lambda x: x.failed_at)
    letters = letters[-args.limit:] if args.limit > 0 else letters
    marks = read_marks(settings.kafka, codec)
    if args.json:
        json.dump([as_json(x, marks.get(x.mark_key)) for x in letters], out, indent=2)
        out.write("\n")
    else:
        print_table(args.topic, letters, marks, out)
    return 0
