"""Typed reads of a YAML-shaped mapping, with one error that says where, what and why.

The dispatcher's provider file and its ``policy:`` section are read through
:class:`Fields`: each getter checks one key and returns a typed value or raises
:class:`ConfigError` naming the file (when there is one) and the dotted key path,
e.g. ``dispatcher.yaml: webhooks.billing-sync.url: expected an http(s) URL, got 'ftp://x'``.
With an :class:`~signalbox.common.env.Env`, ``${NAME}`` in a string is replaced by
the environment variable ``NAME`` (an unset one is an error at that key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from signalbox.common.env import Env
from signalbox.common.errors import SignalboxError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ConfigError(SignalboxError, ValueError):
    """A configuration file (or a section of one) is unreadable or has a wrong value.

    ``where`` is ``file: key.path`` (or the key path alone for a section read without
    its file), ``why`` the reason."""

    what = "configuration"


class Fields:
    """One mapping of a document; ``path`` is its dotted place, ``source`` the file."""

    def __init__(self, data: Any, path: str = "", source: str = "",
                 env: Env | None = None) -> None:
        self.source, self.path, self.env = source, path, env
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise self.error("", f"expected a mapping, got {type(data).__name__}")
        self.data: Mapping[str, Any] = data

    def where(self, key: str = "") -> str:
        return ".".join(p for p in (self.path, key) if p) or "(top level)"

    def error(self, key: str, why: str) -> ConfigError:
        where = self.where(key)
        place = f"{self.source}: {where}" if self.source else where
        return ConfigError(f"{place}: {why}", where=place, why=why)

    def only(self, *known: str) -> None:
        for key in self.data:
            if key not in known:
                raise self.error(str(key), f"unknown key (known: {', '.join(known)})")

    def require(self, *keys: str) -> None:
        for key in keys:
            if key not in self.data:
                raise self.error(key, "required")

    def child(self, key: str) -> Fields:
        """The mapping under ``key`` (absent or null: empty)."""
        return Fields(self.data.get(key), ".".join(p for p in (self.path, key) if p),
                      self.source, self.env)

    def items(self) -> list[tuple[str, Fields]]:
        """Each key of this mapping with the mapping under it."""
        return [(str(k), self.child(str(k))) for k in self.data]

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key)
        if value is None:
            if default is None:
                raise self.error(key, "required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(key, f"expected a string, got {type(value).__name__}")
        return self._expand(key, str(value))

    def _expand(self, key: str, value: str) -> str:
        env = self.env
        if env is None:
            return value

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            found = env.get(name)
            if found is None:
                raise self.error(key, f"environment variable {name} is not set")
            return found

        return _VAR.sub(sub, value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def number(self, key: str, default: float, minimum: float = 0.001) -> float:
        return float(self._number(key, default, minimum, integer=False))

    def integer(self, key: str, default: int, minimum: int = 0) -> int:
        return int(self._number(key, default, minimum, integer=True))

    def _number(self, key: str, default: float, minimum: float, integer: bool) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
            raise self.error(key, f"expected {'an integer' if integer else 'a number'}, "
                                  f"got {value!r}")
        if value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return value

    def port(self, key: str, default: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self.error(key, f"expected a port number 1-65535, got {value!r}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise self.error(key, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def url(self, key: str, default: str | None = None) -> str:
        value = self.text(key, default)
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.error(key, f"expected an http(s) URL, got {value!r}")
        return value.rstrip("/")

    def file(self, key: str) -> str:
        """The path of an existing file, or "" when the key is absent."""
        path = self.text(key, "")
        if path and not Path(path).is_file():
            raise self.error(key, f"no such file: {path!r}")
        return path

    def strings(self, key: str) -> dict[str, str]:
        """A mapping of names to strings (e.g. HTTP headers)."""
        sub = self.child(key)
        return {k: sub.text(k) for k in (str(k) for k in sub.data)}

    def names(self, key: str, what: str, default: tuple[str, ...] = (),
              known: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """A list of strings (absent or null: ``default``), each one of ``known`` if given;
        ``what`` names them in the error."""
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or \
                (known is not None and any(v not in known for v in value)):
            of = f" ({', '.join(known)})" if known is not None else ""
            raise self.error(key, f"expected a list of {what}{of}, got {value!r}")
        return tuple(value)
