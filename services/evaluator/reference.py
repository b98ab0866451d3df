"""The trigger reference of docs/automations.md, generated from the engine's catalogue.

Like the event catalogue, the list of triggers and their parameters is derived
from the code that validates them, so the docs cannot promise a trigger or a
default the engine does not have. A test compares the committed section.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

from signalbox.common import schemas
from signalbox.evaluator.engine.triggers import CATALOGUE, EVENT_PARAMS, Param

BEGIN = ("<!-- triggers:begin: generated from the engine's catalogue by "
         "`python -m signalbox.evaluator.reference docs/automations.md` -->")
END = "<!-- triggers:end -->"


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


def replace_section(document: str) -> str:
    """``document`` with its generated section brought up to date."""
    head, _, rest = document.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return head + triggers_markdown() + tail


if __name__ == "__main__":
    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(replace_section(path.read_text("utf-8")), "utf-8")
