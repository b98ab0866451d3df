"""Which environment variable names signalbox (or Faust, which it configures) reads."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import faust

from tests.support.broker import REPO


def unread(names: Iterable[str]) -> list[str]:
    """The names no code reads (a misspelt setting is ignored silently at run time):
    signalbox reads ``"NAME"`` literals, Faust's settings ``env_name="NAME"``."""
    code = "\n".join(p.read_text() for p in (REPO / "services").rglob("*.py"))
    code += (Path(faust.__file__).parent / "types" / "settings" / "settings.py").read_text()
    return sorted(n for n in set(names) if f'"{n}"' not in code)
