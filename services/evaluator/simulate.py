"""``signalbox simulate``: the evaluator's engine over a JSONL file, with a virtual clock.

The same pure engine as the Faust worker (design principle 1), with everything
the worker gets from Kafka replaced by data: events come from a file (one JSON
event per line, the format ``POST /v1/events`` accepts, see docs/events.md),
time comes from virtual ticks every ``--tick`` from the first event until
``--until``, and customer state lives in a dict. The output is the commands
(and approval requests) the pipeline would emit, one JSON object per line,
byte for byte the same for the same input, and how held approvals ended
(``approval_settled``: decided, expired by their ``on_expiry``, or dropped).

Ordering: events are taken in ``occurred_at`` order (ties keep file order); before
an event at time *t*, every tick at or before *t* runs first, so a timer due at
*t* fires before an event at *t* can change it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from signalbox.common import schemas
from signalbox.common.action_command import command_to_record
from signalbox.common.clock import epoch_ms
from signalbox.common.errors import SignalboxError
from signalbox.evaluator.engine import (
    ApprovalOutcome,
    ApprovalRequest,
    AutomationSet,
    Command,
    CustomerState,
    Decision,
    Event,
    Tick,
    TimerIndex,
    evaluate,
    next_due,
)
from signalbox.evaluator.engine_records import event_from_record
from signalbox.ingest.validation import InvalidEvents, InvalidJson, decode_json, validate_batch

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class SimulationInputError(SignalboxError, ValueError):
    """The events file or an option is unusable; ``problems`` lists ``line: path: reason``."""

    what = "simulation input"

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems[:5]) + (" …" if len(problems) > 5 else ""))
        self.problems = tuple(problems)


def parse_duration(text: str) -> int:
    """``15m``, ``1h``, ``1d``, ``500ms`` → milliseconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise SimulationInputError([f"--tick: expected a positive duration like 15m, 1h or 1d, "
                                    f"got {text!r}"])
    return int(match[1]) * _UNIT_MS[match[2]]


def parse_time(text: str) -> int:
    """ISO 8601 with an offset, or epoch milliseconds → epoch ms."""
    if text.strip().lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise SimulationInputError([f"--until: not an ISO 8601 time: {text!r}"]) from None
    if parsed.utcoffset() is None:
        raise SimulationInputError([f"--until: {text!r} has no UTC offset (add Z or +hh:mm)"])
    return epoch_ms(parsed)


def read_events(lines: Iterable[str], source: str = "<events>") -> list[Event]:
    """Validate every line as ingest would; all problems are reported, nothing half-read."""
    problems: list[str] = []
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            body = decode_json(line.encode("utf-8"))
            # received_at is the event's own time: the simulation never reads the clock.
            accepted = validate_batch(body, received_at=0)
        except InvalidJson as exc:
            problems.append(f"{where}: {exc.problem.reason}")
            continue
        except InvalidEvents as exc:
            problems.extend(f"{where}: {p.path}: {p.reason}" for p in exc.problems)
            continue
        for valid in accepted:
            record = dict(valid.record)
            record["received_at"] = record["occurred_at"]
            events.append(event_from_record(record))
    if problems:
        raise SimulationInputError(problems)
    return sorted(events, key=lambda e: e.occurred_at)  # stable: ties keep file order


@dataclass
class Simulation:
    """Customer states, the timer index and the virtual clock of one run."""

    automations: AutomationSet
    tick_ms: int
    states: dict[str, CustomerState] = field(default_factory=dict)
    timers: TimerIndex = field(default_factory=TimerIndex)
    clock: int | None = None  # time of the last tick run
    ticks: int = 0

    def _apply(self, customer_id: str, decision: Decision) -> Decision:
        if decision.state is not None:
            self.states[customer_id] = decision.state
            self.timers.set(customer_id, next_due(decision.state, self.automations))
        return decision

    def advance(self, until: int) -> Iterator[Decision]:
        """Run every tick up to and including ``until`` (aligned to the tick interval)."""
        at = until - until % self.tick_ms
        start = at if self.clock is None else self.clock + self.tick_ms
        for tick_at in range(start, at + 1, self.tick_ms):
            self.clock = tick_at
            self.ticks += 1
            tick = Tick(partition=0, at=tick_at, interval_ms=self.tick_ms)
            for customer_id in self.timers.pop_due(tick_at):
                yield self._apply(customer_id,
                                  evaluate(self.states.get(customer_id), tick, self.automations))

    def feed(self, event: Event) -> Iterator[Decision]:
        yield from self.advance(event.occurred_at)
        yield self._apply(event.customer_id,
                          evaluate(self.states.get(event.customer_id), event, self.automations))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | frozenset | set):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def command_json(command: Command) -> dict[str, Any]:
    """A command as a JSON object: the Avro record, with the channel named and ISO times."""
    record = command_to_record(command)
    branch, action = record["action"]
    return {"kind": "command", **record, "issued_at": _iso(record["issued_at"]),
            "action": {"channel": schemas.CHANNEL_BY_ACTION[branch], **action}}


def approval_json(request: ApprovalRequest) -> dict[str, Any]:
    return {"kind": "approval_request", **asdict(request),
            "requested_at": _iso(request.requested_at)}


def settled_json(outcome: ApprovalOutcome) -> dict[str, Any]:
    return {"kind": "approval_settled", "approval_id": outcome.approval_id,
            "customer_id": outcome.customer_id, "status": outcome.status,
            "at": _iso(outcome.at), "released": outcome.released}


def run(automations: AutomationSet, events: Sequence[Event], out: IO[str], tick_ms: int,
        until: int | None = None) -> dict[str, int]:
    """Simulate and write JSONL to ``out``; returns counts for the summary line."""
    sim = Simulation(automations, tick_ms)
    counts = {"events": len(events), "commands": 0, "approvals": 0, "settled": 0,
              "duplicates": 0}

    def emit(decisions: Iterable[Decision]) -> None:
        for decision in decisions:
            counts["duplicates"] += decision.duplicate
            for command in decision.commands:
                out.write(json.dumps(command_json(command), sort_keys=True,
                                     default=_json_default) + "\n")
                counts["commands"] += 1
            for request in decision.approvals:
                out.write(json.dumps(approval_json(request), sort_keys=True,
                                     default=_json_default) + "\n")
                counts["approvals"] += 1
            for outcome in decision.settled:
                out.write(json.dumps(settled_json(outcome), sort_keys=True) + "\n")
                counts["settled"] += 1

    for event in events:
        emit(sim.feed(event))
    end = until if until is not None else (events[-1].occurred_at if events else None)
    if end is not None:
        emit(sim.advance(end))
    counts["ticks"] = sim.ticks
    counts["customers"] = len(sim.states)
    return counts
