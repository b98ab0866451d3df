"""The pure automation engine: ``evaluate(state, input, automations) -> Decision``.

No Kafka, no clock, no network: the same input gives the same output, byte for
byte, whether it runs in the Faust agent, in ``signalbox simulate`` or in a test.
"""

from signalbox.evaluator.engine.automations import (
    AlertAction,
    Automation,
    AutomationError,
    AutomationSet,
    EmailAction,
    Trigger,
    load_automations,
    parse_automations,
)
from signalbox.evaluator.engine.engine import command_id, evaluate
from signalbox.evaluator.engine.model import (
    Command,
    CustomerState,
    Decision,
    EmailCommand,
    Event,
    Profile,
    Tick,
    TriggerInfo,
)

__all__ = [
    "AlertAction",
    "Automation",
    "AutomationError",
    "AutomationSet",
    "Command",
    "CustomerState",
    "Decision",
    "EmailAction",
    "EmailCommand",
    "Event",
    "Profile",
    "Tick",
    "Trigger",
    "TriggerInfo",
    "command_id",
    "evaluate",
    "load_automations",
    "parse_automations",
]
