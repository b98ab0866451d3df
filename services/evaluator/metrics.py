"""Prometheus metrics of the evaluator."""

from prometheus_client import Counter, Gauge, Histogram

INPUTS = Counter("signalbox_evaluator_inputs_total", "Inputs processed", ["kind", "type"])
DUPLICATES = Counter("signalbox_evaluator_duplicate_events_total",
                     "Redelivered events that changed nothing")
COMMANDS = Counter("signalbox_evaluator_commands_total", "Commands emitted", ["automation"])
DEAD_LETTERS = Counter("signalbox_evaluator_dead_letters_total",
                       "Inputs sent to the dead-letter topic", ["topic", "error"])
LATENCY = Histogram("signalbox_evaluator_batch_seconds",
                    "Time to process one batch of inputs (evaluate, send, persist)",
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))
BATCH = Histogram("signalbox_evaluator_batch_size", "Inputs per batch",
                  buckets=(1, 5, 10, 50, 100, 250, 500, 1000))
AUTOMATIONS = Gauge("signalbox_evaluator_automations", "Enabled automations loaded")
TICK_AT = Gauge("signalbox_evaluator_last_tick_seconds",
                "Time carried by the last tick seen, per partition", ["partition"])
AUTOMATION_CHANGES = Counter("signalbox_evaluator_automation_changes_total",
                             "Records of the automations topic, by outcome",
                             ["outcome"])  # applied | rejected
TIMERS = Gauge("signalbox_evaluator_timers", "Customers with a pending timer, per partition",
               ["partition"])
TIMERS_FIRED = Counter("signalbox_evaluator_timers_due_total",
                       "Customers woken by a tick because a timer of theirs was due")
APPROVALS_PENDING = Gauge("signalbox_evaluator_approvals_pending",
                          "Approval requests waiting for a decision")
STATES_TOO_LARGE = Counter("signalbox_evaluator_states_too_large_total",
                           "States over the changelog's max.message.bytes, dead-lettered "
                           "instead of stored")
STATE_ENTRIES_DROPPED = Counter("signalbox_evaluator_state_entries_dropped_total",
                                "Entries a customer's state dropped, oldest first, to keep a "
                                "collection within its cap", ["collection"])
