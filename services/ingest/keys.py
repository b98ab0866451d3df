"""API keys of ingest: who may post events, and which event types.

A key is named for the producer that holds it (``stripe-webhooks``, ``product-app``)
and scoped to event types (exact names, ``prefix.*`` or ``*``; never an internal type,
see :data:`INTERNAL_TYPES`). Only a SHA-256 digest of each key is stored: the keys
are 256-bit random strings, so a fast hash is enough (a slow password hash protects
low-entropy secrets). The key's id is part of the key (``sbk_<id>_<secret>``), so a
lookup is by id and the digest comparison is constant-time.

The store is one JSON file (``INGEST_KEYS_FILE``) that ``signalbox keys create|list|
revoke`` edit and ingest re-reads when it changes: several keys of one producer can be
valid at once, so a key is rotated by creating the new one, switching the producer
over, then revoking the old one, with no restart. Revoked keys stay in the file, marked,
for the audit trail.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from signalbox.common.errors import SignalboxError
from signalbox.ingest.avro_json import Problem, child_path, clip

log = structlog.get_logger(__name__)

FORMAT = "signalbox.ingest-keys/1"
#: Event types only signalbox itself writes; no producer key may send them. Decisions on
#: approvals come from the admin API (an authenticated operator), never from ingest.
INTERNAL_TYPES = frozenset({"approval.decided"})
ALL_TYPES = "*"
_TOKEN = re.compile(r"^sbk_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyFileError(SignalboxError, ValueError):
    """The keys file or a requested change to it is not usable; the message says why."""

    what = "keys file"


@dataclass(frozen=True)
class ApiKey:
    """One producer key as stored: never the key itself, only its digest."""

    key_id: str
    name: str
    event_types: tuple[str, ...]
    sha256: str
    created_at: int
    revoked_at: int | None = None

    def allows(self, event_type: str) -> bool:
        """Whether this key may post events of ``event_type`` (never an internal one)."""
        return event_type not in INTERNAL_TYPES and any(
            _matches(pattern, event_type) for pattern in self.event_types)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["event_types"] = list(self.event_types)
        return out


def _matches(pattern: str, event_type: str) -> bool:
    if pattern == ALL_TYPES:
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The id part of a well-formed key, ``None`` for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def new_key(name: str, event_types: Sequence[str], known_types: Collection[str],
            now_ms: int) -> tuple[ApiKey, str]:
    """A new key (record, secret) for producer ``name``; the secret is shown once only."""
    if not _NAME.match(name):
        raise KeyFileError(f"key name {name!r}: 1-64 letters, digits, '.', '_' or '-', "
                           "starting with a letter or digit (name it for the producer)")
    check_scopes(event_types, known_types)
    key_id = secrets.token_hex(6)
    token = f"sbk_{key_id}_{secrets.token_urlsafe(32)}"
    return ApiKey(key_id, name, tuple(event_types), digest(token), now_ms), token


def check_scopes(event_types: Sequence[str], known_types: Collection[str]) -> None:
    """Every scope names a known producer type (or ``prefix.*``, ``*``); else why not."""
    if not event_types:
        raise KeyFileError("a key needs at least one event type (or '*' for all)")
    for pattern in event_types:
        if pattern in INTERNAL_TYPES:
            raise KeyFileError(f"{pattern!r} is written by signalbox only; "
                               "no producer key may send it")
        if not any(_matches(pattern, t) for t in known_types if t not in INTERNAL_TYPES):
            raise KeyFileError(f"event type {pattern!r} matches no producer event type "
                               "(see docs/events.md)")


def parse(text: str, source: str) -> list[ApiKey]:
    """The keys of a keys file; :class:`KeyFileError` naming the file and the problem."""
    try:
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            raise KeyFileError(f"{source}: not a signalbox keys file (format {FORMAT!r})")
        return [ApiKey(key_id=str(k["key_id"]), name=str(k["name"]),
                       event_types=tuple(str(t) for t in k["event_types"]),
                       sha256=str(k["sha256"]), created_at=int(k["created_at"]),
                       revoked_at=None if k.get("revoked_at") is None else int(k["revoked_at"]))
                for k in raw["keys"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, KeyFileError):
            raise
        raise KeyFileError(f"{source}: unreadable keys file: {type(exc).__name__}: {exc}"
                           ) from None


def render(keys: Sequence[ApiKey]) -> str:
    return json.dumps({"format": FORMAT, "keys": [k.as_json() for k in keys]}, indent=2) + "\n"


class KeyFile:
    """The keys file on disk: read, and changed under a lock with an atomic replace."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> list[ApiKey]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise KeyFileError(f"{self.path}: cannot read: {exc.strerror}") from None
        return parse(text, str(self.path))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[ApiKey]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{self.path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield self.load()

    def _write(self, keys: Sequence[ApiKey]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp: mode 0600
                out.write(render(keys))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def create(self, name: str, event_types: Sequence[str], known_types: Collection[str],
               now_ms: int) -> tuple[ApiKey, str]:
        with self._locked() as keys:
            key, token = new_key(name, event_types, known_types, now_ms)
            self._write([*keys, key])
        return key, token

    def revoke(self, key_id: str, now_ms: int) -> ApiKey:
        """Mark one key revoked (by id); ingest refuses it from its next reload."""
        with self._locked() as keys:
            found = [k for k in keys if k.key_id == key_id]
            if not found:
                raise KeyFileError(f"no key with id {key_id!r} in {self.path}")
            if found[0].revoked_at is not None:
                return found[0]
            revoked = replace(found[0], revoked_at=now_ms)
            self._write([revoked if k.key_id == key_id else k for k in keys])
        return revoked


@dataclass(frozen=True)
class Refusal:
    """Why a request was not authenticated (answered 401)."""

    reason: str


class Authenticator:
    """Checks ``Authorization: Bearer <key>`` against the keys file, re-read on change.

    The file is looked at (one ``stat``) at most every ``recheck_s`` seconds, so a new or
    revoked key takes effect within that time without a restart. A file that becomes
    unreadable keeps the keys last read (an operator's typo must not lock out every
    producer) and is logged.
    """

    def __init__(self, path: str | Path, recheck_s: float = 1.0) -> None:
        self._file = KeyFile(path)
        self._recheck_s = recheck_s
        self._checked_at = -float("inf")
        self._seen: tuple[int, int, int] | None = (-1, -1, -1)  # nothing read yet
        self._by_id: Mapping[str, ApiKey] = {}
        self._refresh()

    def _refresh(self) -> None:
        self._checked_at = time.monotonic()
        try:
            st = os.stat(self._file.path)
            seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            seen = None
        except OSError as exc:
            log.error("ingest_keys_unreadable", path=str(self._file.path), error=exc.strerror)
            return
        if seen == self._seen:
            return
        try:
            keys = self._file.load()
        except KeyFileError as exc:
            log.error("ingest_keys_unreadable", path=str(self._file.path), error=str(exc),
                      keeping=len(self._by_id))
            return
        self._seen = seen
        self._by_id = {k.key_id: k for k in keys if k.revoked_at is None}
        report = log.info if self._by_id else log.warning  # no key: every request is a 401
        report("ingest_keys_loaded", path=str(self._file.path), active=len(self._by_id),
               revoked=len(keys) - len(self._by_id))

    @property
    def active(self) -> int:
        return len(self._by_id)

    def authenticate(self, header: str | None) -> ApiKey | Refusal:
        if time.monotonic() - self._checked_at >= self._recheck_s:
            self._refresh()
        if not header:
            return Refusal("missing Authorization header: send 'Authorization: Bearer <key>' "
                           "with a key from `signalbox keys create`")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return Refusal("the Authorization header must be 'Bearer <key>'")
        key_id = key_id_of(token.strip())
        key = self._by_id.get(key_id) if key_id else None
        if key is None or not hmac.compare_digest(key.sha256, digest(token.strip())):
            if not self._by_id:
                return Refusal("no API key is configured on this ingest: create one with "
                               "`signalbox keys create`")
            return Refusal("unknown or revoked API key")
        return key


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def describe(key: ApiKey) -> str:
    """One line of ``signalbox keys list``."""
    state = f"revoked {_iso(key.revoked_at)}" if key.revoked_at else "active"
    return (f"{key.key_id}\t{key.name}\t{','.join(key.event_types)}\t"
            f"created {_iso(key.created_at)}\t{state}")


def forbidden_types(body: Any, key: ApiKey | None) -> list[Problem]:
    """Events of a decoded request that ``key`` may not send (``None``: no keys in use,
    loopback development), each with its path: internal types are refused for everyone."""
    items = body if isinstance(body, list) else [body]
    problems = []
    for i, item in enumerate(items):
        event_type = item.get("type") if isinstance(item, dict) else None
        if not isinstance(event_type, str):
            continue  # validation reports it
        path = child_path(f"$[{i}]" if isinstance(body, list) else "$", "type")
        if event_type in INTERNAL_TYPES:
            problems.append(Problem(path, f"{event_type} is written by signalbox only; "
                                          "approval decisions are made through the admin API"))
        elif key is not None and not key.allows(event_type):
            problems.append(Problem(path, f"the key {key.name!r} may send "
                                          f"{', '.join(key.event_types)} only, not "
                                          f"{clip(event_type)}"))
    return problems
