"""Which environment variable names signalbox (or Faust, which it configures) reads."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import faust

from signalbox.testing.broker import REPO


def unread(names: Iterable[str]) -> list[str]:
    """The names no code reads (a misspelt setting is ignored silently at run time):
    signalbox reads ``"NAME"`` literals, Faust's settings ``env_name="NAME"``, and the
    source mappings name their secret's variable as ``secrets_env: NAME``."""
    code = "\n".join(p.read_text() for p in (REPO / "services").rglob("*.py"))
    code += (Path(faust.__file__).parent / "types" / "settings" / "settings.py").read_text()
    mappings = "\n".join(p.read_text() for p in (REPO / "services").rglob("mappings/*.yaml"))
    read = set(re.findall(r"^\s*secrets_env:\s*([A-Z0-9_]+)", mappings, re.MULTILINE))
    return sorted(n for n in set(names) if f'"{n}"' not in code and n not in read)
