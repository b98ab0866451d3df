"""The trigger and template-variable reference of docs/automations.md, generated.

Like the event catalogue, the list of triggers and their parameters is derived
from the code that validates them, and the variables each trigger gives its
templates from the catalogue the template check uses
(:mod:`signalbox.evaluator.engine.template_variables`), so the docs cannot promise
a trigger, a default or a variable the engine does not have. A test compares the
committed sections.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from signalbox.common import schemas
from signalbox.evaluator.engine import template_variables as tv
from signalbox.evaluator.engine.triggers import CATALOGUE, EVENT_PARAMS, Param

BEGIN = ("<!-- triggers:begin: generated from the engine's catalogue by "
         "`python -m signalbox.evaluator.reference docs/automations.md` -->")
END = "<!-- triggers:end -->"
VARIABLES_BEGIN = ("<!-- variables:begin: generated from the engine's variable catalogue by "
                   "`python -m signalbox.evaluator.reference docs/automations.md` -->")
VARIABLES_END = "<!-- variables:end -->"


def _params(params: Mapping[str, Param]) -> str:
    if not params:
        return "none"
    parts = []
    for name, p in params.items():
        if p.required:
            parts.append(f"`{name}` (required)")
        elif p.default is None:
            parts.append(f"`{name}`")
        else:
            default = list(p.default) if isinstance(p.default, tuple) else p.default
            parts.append(f"`{name}` (default `{json.dumps(default)}`)")
    return ", ".join(parts)


def triggers_markdown() -> str:
    """The generated section, markers included."""
    rows = [BEGIN, "", "| trigger | kind | fires when | parameters |", "|---|---|---|---|"]
    for spec in sorted(CATALOGUE.values(), key=lambda s: (s.kind != "time", s.name)):
        rows.append(f"| `{spec.name}` | {spec.kind} | {spec.doc} | {_params(spec.params)} |")
    for name, event in sorted(schemas.event_types().items()):
        params = EVENT_PARAMS.get(name, {})
        extra = "any field of the event as a filter" + (f"; {_params(params)}" if params else "")
        rows.append(f"| `{name}` | event | {event.doc} | {extra} |")
    rows += ["", END]
    return "\n".join(rows)


def _names(variables: tuple[tv.Variable, ...]) -> str:
    return ", ".join(f"`{v.name}`" for v in variables)


def variables_markdown() -> str:
    """The generated variables section, markers included."""
    rows = [VARIABLES_BEGIN, "",
            "Every variable is text. Every trigger gives:", "",
            "| variable | meaning |", "|---|---|"]
    rows += [f"| `{v.name}` | {v.doc} |" for v in tv.COMMON]
    rows += ["", "Whatever the trigger, the action or channel adds:", "",
             "| variable | given to | meaning |", "|---|---|---|"]
    rows += [f"| `{v.name}` | `{action}` actions | {v.doc} |"
             for action, vs in tv.ACTION_EXTRAS.items() for v in vs]
    rows += [f"| `{v.name}` | {channel} templates | {v.doc} |"
             for channel, vs in tv.CHANNEL_EXTRAS.items() for v in vs]
    rows += ["", f"`{tv.ATTRIBUTE_PREFIX}<name>`: each attribute of the event that fired the "
             "automation (event and derived triggers; time triggers have none). Attributes are "
             "free-form, so one is there only when the producer sent it: guard it with "
             f"`{{% if {tv.ATTRIBUTE_PREFIX}plan is defined %}}`.", "",
             "Each trigger adds (an event trigger: every field of the event's `data`, `\"\"` "
             "when absent, and `<field>_iso` for its time fields; see [events.md](events.md)):",
             "", "| trigger | kind | variables |", "|---|---|---|"]
    for spec in sorted(CATALOGUE.values(), key=lambda s: (s.kind != "time", s.name)):
        facts = "; ".join(f"`{v.name}`: {v.doc.rstrip('.')}" for v in tv.FACTS[spec.name])
        rows.append(f"| `{spec.name}` | {spec.kind} | {facts} |")
    for name, event in sorted(schemas.event_types().items()):
        own = (*tv.event_variables(event.fields), *tv.EVENT_EXTRAS.get(name, ()))
        rows.append(f"| `{name}` | event | {_names(own) or 'none'} |")
    rows += ["", VARIABLES_END]
    return "\n".join(rows)


def _replace(document: str, begin: str, end: str, section: str) -> str:
    head, found, rest = document.partition(begin)
    if not found:
        raise ValueError(f"no {begin!r} marker in the document")
    _, _, tail = rest.partition(end)
    return head + section + tail


def replace_section(document: str) -> str:
    """``document`` with its generated sections brought up to date."""
    document = _replace(document, BEGIN, END, triggers_markdown())
    return _replace(document, VARIABLES_BEGIN, VARIABLES_END, variables_markdown())


if __name__ == "__main__":
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(replace_section(path.read_text("utf-8")), "utf-8")
