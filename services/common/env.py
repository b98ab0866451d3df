"""The one reader of the process environment: typed getters with clear errors.

Every variable signalbox reads goes through an :class:`Env` (a test checks that no
other module of the package touches ``os.environ``), so a malformed value fails at
start-up the same way everywhere: ``NAME: expected …, got …``. A blank value means
the default; values are trimmed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from signalbox.common.errors import SignalboxError


class SettingsError(SignalboxError, ValueError):
    """A variable in the environment has a value signalbox cannot use."""

    what = "setting"


class Env:
    """Typed reads of one environment: the process's, or a mapping given (tests)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env: Mapping[str, str] = os.environ if environ is None else environ

    @classmethod
    def of(cls, environ: Env | Mapping[str, str] | None) -> Env:
        """``environ`` as an :class:`Env` (``None``: the process environment)."""
        return environ if isinstance(environ, Env) else cls(environ)

    def get(self, name: str) -> str | None:
        """The raw value, untrimmed; ``None`` when the variable is not set at all."""
        return self._env.get(name)

    def _read(self, name: str, default: object) -> str:
        """The trimmed value (blank when unset): the one read behind every typed getter,
        which passes its default along (a test records both to check one default each)."""
        return str(self._env.get(name, "")).strip()

    def text(self, name: str, default: str) -> str:
        return self._read(name, default) or default

    def integer(self, name: str, default: int, minimum: int | None = None) -> int:
        raw = self._read(name, default)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an integer, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise SettingsError(f"{name}: must be at least {minimum}, got {value}")
        return value

    def number(self, name: str, default: float, minimum: float = 0.0) -> float:
        raw = self._read(name, default)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
        if value < minimum:
            raise SettingsError(f"{name}: must be at least {minimum}, got {value}")
        return value

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``, in any case; returned as spelled in ``choices``."""
        return one_of(name, self._read(name, default) or default, choices)

    def items(self, name: str) -> tuple[str, ...]:
        """``a, b,`` → ``("a", "b")`` (blank items dropped); none when unset."""
        return tuple(s.strip() for s in self._read(name, "").split(",") if s.strip())

    def pairs(self, name: str, default: str) -> dict[str, str]:
        """``a=x,b=y`` → ``{"a": "x", "b": "y"}``."""
        out: dict[str, str] = {}
        given = self._read(name, default) or default
        for item in filter(None, (p.strip() for p in given.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise SettingsError(f"{name}: expected name=value pairs, got {item!r}")
            out[key.strip()] = value.strip()
        return out


def one_of(name: str, value: str, choices: tuple[str, ...]) -> str:
    """``value`` of variable ``name`` as spelled in ``choices`` (any case matches)."""
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise SettingsError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
