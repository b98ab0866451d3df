"""The pure automation engine: ``evaluate(state, input, automations) -> Decision``.

No Kafka, no clock, no network: the same input gives the same output, byte for
byte, whether it runs in the Faust agent, in ``signalbox simulate`` or in a test.
``next_due`` tells the shell when a customer next needs a tick and ``TimerIndex``
finds the due customers of a tick without looking at the others. The command types
are the shared contract of :mod:`signalbox.common.action_command`, re-exported here.
"""

from signalbox.common.action_command import (
    ChannelCommand,
    Command,
    CrmCommand,
    EmailCommand,
    ExportCommand,
    SmsCommand,
    TriggerInfo,
    WebhookCommand,
)
from signalbox.evaluator.engine.actions import (
    Action,
    AlertAction,
    ApprovalAction,
    CrmAction,
    EmailAction,
    ExportAction,
    ScoreAction,
    SmsAction,
    Team,
    WebhookAction,
)
from signalbox.evaluator.engine.automations import (
    FORMAT,
    Automation,
    AutomationError,
    AutomationSet,
    Trigger,
    load_automations,
    parse_automations,
)
from signalbox.evaluator.engine.commands import approval_id, command_id, describe
from signalbox.evaluator.engine.conditions import Comparison, Conditions
from signalbox.evaluator.engine.engine import evaluate
from signalbox.evaluator.engine.model import (
    Agreement,
    Appointment,
    ApprovalOutcome,
    ApprovalRequest,
    CustomerState,
    Decision,
    Event,
    OpenInvoice,
    OpenTask,
    PendingApproval,
    Profile,
    Tick,
    UsagePeriod,
)
from signalbox.evaluator.engine.timer_index import TimerIndex
from signalbox.evaluator.engine.timers import NEXT_DUE_RULES, Occurrence, next_due
from signalbox.evaluator.engine.triggers import CATALOGUE, TIME_TRIGGERS, TriggerSpec

__all__ = [
    "CATALOGUE",
    "FORMAT",
    "NEXT_DUE_RULES",
    "TIME_TRIGGERS",
    "Action",
    "Agreement",
    "AlertAction",
    "Appointment",
    "ApprovalAction",
    "ApprovalOutcome",
    "ApprovalRequest",
    "Automation",
    "AutomationError",
    "AutomationSet",
    "ChannelCommand",
    "Command",
    "Comparison",
    "Conditions",
    "CrmAction",
    "CrmCommand",
    "CustomerState",
    "Decision",
    "EmailAction",
    "EmailCommand",
    "Event",
    "ExportAction",
    "ExportCommand",
    "Occurrence",
    "OpenInvoice",
    "OpenTask",
    "PendingApproval",
    "Profile",
    "ScoreAction",
    "SmsAction",
    "SmsCommand",
    "Team",
    "Tick",
    "TimerIndex",
    "Trigger",
    "TriggerInfo",
    "TriggerSpec",
    "UsagePeriod",
    "WebhookAction",
    "WebhookCommand",
    "approval_id",
    "command_id",
    "describe",
    "evaluate",
    "load_automations",
    "next_due",
    "parse_automations",
]
