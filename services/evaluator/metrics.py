"""Prometheus metrics of the evaluator."""

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

from signalbox.common import schemas
from signalbox.common.metrics import forget_partitions, initialise
from signalbox.evaluator.engine.state_limits import CAPS

INPUTS = Counter("signalbox_evaluator_inputs_total", "Inputs processed", ["kind", "type"])
DUPLICATES = Counter("signalbox_evaluator_duplicate_events_total",
                     "Redelivered events that changed nothing")
COMMANDS = Counter("signalbox_evaluator_commands_total", "Commands emitted", ["automation"])
DEAD_LETTERS = Counter("signalbox_evaluator_dead_letters_total",
                       "Inputs sent to the dead-letter topic", ["topic", "error"])
LATENCY = Histogram("signalbox_evaluator_batch_seconds",
                    "Time to process one batch of inputs (evaluate, send, persist)",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
BATCH = Histogram("signalbox_evaluator_batch_records", "Inputs per batch",
                  buckets=(1, 5, 10, 50, 100, 250, 500, 1000))
AUTOMATIONS = Gauge("signalbox_evaluator_automations", "Enabled automations loaded")
TICK_AT = Gauge("signalbox_evaluator_last_tick_timestamp_seconds",
                "Time carried by the last tick seen, per partition owned (Unix seconds)",
                ["partition"])
AUTOMATION_CHANGES = Counter("signalbox_evaluator_automation_changes_total",
                             "Records of the automations topic, by outcome",
                             ["outcome"])  # applied | rejected
TIMERS = Gauge("signalbox_evaluator_timers",
               "Customers with a pending timer, per partition owned", ["partition"])
TIMERS_FIRED = Counter("signalbox_evaluator_timers_due_total",
                       "Customers woken by a tick because a timer of theirs was due")
APPROVALS_PENDING = Gauge("signalbox_evaluator_approvals_pending",
                          "Approval requests waiting for a decision")
APPROVALS_SETTLED = Counter("signalbox_evaluator_approvals_settled_total",
                            "Held approvals the engine ended, by how", ["status"])
DECISIONS_RESENT = Counter("signalbox_evaluator_approval_decisions_resent_total",
                           "approval.decided events sent again for decisions the evaluator "
                           "had not settled")
STATES_TOO_LARGE = Counter("signalbox_evaluator_states_too_large_total",
                           "States over the changelog's max.message.bytes, dead-lettered "
                           "instead of stored")
STATE_ENTRIES_DROPPED = Counter("signalbox_evaluator_state_entries_dropped_total",
                                "Entries a customer's state dropped, oldest first, to keep a "
                                "collection within its cap", ["collection"])

#: Error types the evaluator itself dead-letters inputs for (an engine bug adds its own).
DEAD_LETTER_ERRORS = ("DecodeError", "InputRejected", "CommandTooLarge")


def initialise_series(input_topics: Iterable[str], state_records: str) -> None:
    """The labelled counters' series at zero, so rate() has a series before the first
    event (automations' command counters: :func:`initialise_automations`)."""
    topics = sorted(input_topics)
    initialise(INPUTS, ["event"], sorted(schemas.event_types()))
    initialise(INPUTS, ["tick"], ["tick"])
    initialise(DEAD_LETTERS, topics, DEAD_LETTER_ERRORS)
    initialise(DEAD_LETTERS, [state_records], ["StateTooLarge"])
    initialise(AUTOMATION_CHANGES, ["applied", "rejected"])
    initialise(STATE_ENTRIES_DROPPED, sorted(CAPS))
    initialise(APPROVALS_SETTLED, ["approved", "rejected", "expired", "dropped"])


def initialise_automations(automation_ids: Iterable[str]) -> None:
    initialise(COMMANDS, sorted(automation_ids))


def forget(partitions: Iterable[int]) -> None:
    """Partitions no longer owned: their per-partition gauges go (another worker exports
    them now)."""
    gone = list(partitions)
    forget_partitions(TIMERS, gone)
    forget_partitions(TICK_AT, gone)
