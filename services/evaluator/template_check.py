"""Templates checked when an automation is applied, not when the dispatcher renders it.

Every email, SMS and alert action names a template. The dispatcher renders it in
Jinja's sandbox with strict undefined variables (:mod:`signalbox.dispatcher.templates`),
so a missing file or a variable the trigger never provides fails every send and
lands in the DLQ. This check finds both before the automation is accepted, on the
same sandboxed environment and the same directories (``SIGNALBOX_TEMPLATES_DIR``,
then the built-in templates), with Jinja's ``meta.find_undeclared_variables``.

The rules (docs/automations.md, "Templates"), found and resolved exactly as the
dispatcher does (:meth:`TemplateStore.resolve`, :meth:`TemplateStore.variables_used`):

* **The unlocalised file must exist** for every required part of the channel (email:
  ``subject`` and ``txt``; SMS: ``txt``): it is where every locale ends up
  (``de-AT`` → ``de`` → none), so without it some customer's message has no template.
  A trigger's own template (``no_login`` on ``no_login``) without any file falls back
  to the neutral ``notification`` (``alert`` for ``<own>_alert``), as the dispatcher does.
* **Every file a recipient may get is checked**: the unlocalised one, and for messages
  to the customer every locale a variant file exists in (``<name>.<locale>.<part>.j2``),
  since a customer with that locale gets it; internal mail and alerts are rendered
  without a locale, so only their unlocalised files are. The optional email ``html`` is
  checked where it exists, templates they include or extend with them.
* **Every variable a checked file reads must be provided** for the automation's
  trigger (:mod:`signalbox.evaluator.engine.template_variables`): its own and the
  common ones, what the action and channel add, and ``attr_<name>`` for triggers an
  event fires (time triggers carry no attributes).

The files are read at each check (a handful of small files), so a template added
after start-up is seen by the next change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from signalbox.dispatcher.templates import TemplateProblem, TemplateStore, fallback_for
from signalbox.evaluator.engine import (
    Action,
    AlertAction,
    ApprovalAction,
    Automation,
    AutomationSet,
    EmailAction,
    SmsAction,
)
from signalbox.evaluator.engine.template_variables import (
    ATTRIBUTE_PREFIX,
    has_attributes,
    provided,
)

#: The parts of a message, and whether each must exist.
PARTS: Mapping[str, tuple[tuple[str, bool], ...]] = {
    "email": (("subject", True), ("txt", True), ("html", False)),
    "sms": (("txt", True),),
}
_LOCALE = r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*"


@dataclass(frozen=True)
class Sent:
    """One template an action sends: where it is in the automation, and to whom."""

    path: str  # actions[1], or actions[2].actions[0] inside an approval
    action: str  # email | sms | alert
    channel: str  # email | sms
    template: str
    customer: bool  # rendered in the customer's locale (else without one)
    to: str  # "the customer", fixed addresses, or a team

    def describe(self) -> str:
        via = f" via {self.channel}" if self.action == "alert" else ""
        return f"{self.path} ({self.action} to {self.to}{via})"


def sent_templates(actions: Sequence[Action], prefix: str = "actions") -> Iterator[Sent]:
    """Every template the actions send, approvals' held actions included."""
    for i, action in enumerate(actions):
        path = f"{prefix}[{i}]"
        if isinstance(action, ApprovalAction):
            yield from sent_templates(action.actions, f"{path}.actions")
        elif isinstance(action, EmailAction | SmsAction):
            kind = "email" if isinstance(action, EmailAction) else "sms"
            yield Sent(path, kind, kind, action.template, not action.to,
                       ", ".join(action.to) or "the customer")
        elif isinstance(action, AlertAction) and action.via in PARTS:
            yield Sent(path, "alert", action.via, action.template, False,
                       f"team {action.team}")


class TemplateCheck:
    """The templates of ``directories`` (searched first) and the built-in ones, as the
    dispatcher's :class:`TemplateStore` finds and resolves them."""

    def __init__(self, directories: Sequence[str | Path] = ()) -> None:
        self.directories = tuple(str(d) for d in directories if d)
        self._store = TemplateStore(self.directories)

    @classmethod
    def configured(cls, templates_dir: str) -> TemplateCheck:
        """As the dispatcher is configured: ``SIGNALBOX_TEMPLATES_DIR``, then built-ins."""
        return cls([templates_dir] if templates_dir else [])

    def problems(self, automations: AutomationSet, event_types: Mapping[str, Any]
                 ) -> list[str]:
        """Every template problem of the set, each naming the automation, the action,
        the template (part and locale) and the reason; empty when every one will render."""
        listed = self._store.environment.list_templates()
        out: list[str] = []
        for automation in automations.automations:
            for sent in sent_templates(automation.actions):
                out.extend(self._check(automation, sent, listed, event_types))
        return out

    def _locales(self, sent: Sent, trigger: str, listed: Sequence[str]) -> list[str | None]:
        """No locale, then every locale a file of the template (or of the neutral template
        standing in for it) exists in, when the recipient is the customer."""
        if not sent.customer:
            return [None]
        names = {sent.template, fallback_for(sent.template, trigger) or sent.template}
        variant = re.compile(rf"^{re.escape(sent.channel)}/(?P<name>[^/]+?)\.(?P<tag>{_LOCALE})"
                             rf"\.(?:{'|'.join(p for p, _ in PARTS[sent.channel])})\.j2$")
        tags = {m["tag"] for m in map(variant.match, listed) if m and m["name"] in names}
        return [None, *sorted(tags)]

    def _check(self, automation: Automation, sent: Sent, listed: Sequence[str],
               event_types: Mapping[str, Any]) -> Iterator[str]:
        where = f"automation {automation.id}: {sent.describe()}: template {sent.template!r}"
        trigger = automation.trigger.type
        allowed = provided(trigger, event_types, sent.action, sent.channel)
        attributes = has_attributes(trigger)
        seen: set[tuple[str, frozenset[str]]] = set()
        for locale in self._locales(sent, trigger, listed):
            name = self._store.resolve(sent.channel, sent.template, locale, trigger)
            try:
                parts = self._store.variables_used(sent.channel, sent.template, locale,
                                                   trigger)
            except TemplateProblem as exc:
                detail = str(exc).removeprefix("template ")
                if locale is None and "not found" in detail:
                    yield (f"{where}: {detail} in {self._searched()}; every locale falls "
                           f"back to it, so the message could not be sent")
                    return
                yield f"{where}: {detail}"
                continue
            for part, used in parts.items():
                if (part, used) in seen:  # the same file, reached from another locale
                    continue
                seen.add((part, used))
                unknown = sorted(n for n in used if n not in allowed
                                 and not (attributes and n.startswith(ATTRIBUTE_PREFIX)))
                if not unknown:
                    continue
                what = f"{sent.channel}/{name}.{part}" + (f" for locale {locale}"
                                                          if locale else "")
                names = ", ".join(map(repr, unknown))
                why = (f"a {trigger} trigger does not provide "
                       f"{'it' if len(unknown) == 1 else 'them'}"
                       + ("; time triggers carry no event attributes" if any(
                           n.startswith(ATTRIBUTE_PREFIX) for n in unknown) else ""))
                yield (f"{where}: {what} uses {names}, but {why} (it provides "
                       f"{', '.join(sorted(allowed))}; see docs/automations.md, Variables)")

    def _searched(self) -> str:
        dirs = [f"SIGNALBOX_TEMPLATES_DIR ({d}{'' if Path(d).is_dir() else ', missing'})"
                for d in self.directories]
        return " or ".join([*dirs, "the built-in templates"])
