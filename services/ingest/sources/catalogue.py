"""Which sources ingest serves: the built-in mappings and the operator's own.

Built in (``signalbox/ingest/sources/mappings/``): ``stripe``, ``chargebee`` and ``lago``.
``SIGNALBOX_SOURCES_DIR`` may hold more ``*.yaml`` mapping files; one naming a built-in
source replaces it. A source is on when its secrets variable (the mapping's
``auth.secrets_env``, e.g. ``STRIPE_WEBHOOK_SECRETS``) is set: its webhook secret is its
credential, and its producer scope is the event types its mapping produces.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from signalbox.common.env import Env
from signalbox.ingest.keys import ApiKey
from signalbox.ingest.sources.auth import secrets_from
from signalbox.ingest.sources.mapping import MappingError, SourceMapping, load_mapping

BUILTIN = ("stripe", "chargebee", "lago")
SOURCES_DIR_ENV = "SIGNALBOX_SOURCES_DIR"


def builtin_path(name: str) -> Path:
    """The file of a built-in mapping."""
    return Path(str(resources.files("signalbox.ingest.sources") / "mappings" / f"{name}.yaml"))


@dataclass(frozen=True)
class Source:
    """A mapping and the secrets that authenticate its webhooks (none: the source is off)."""

    mapping: SourceMapping
    secrets: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.mapping.source

    @property
    def key(self) -> ApiKey:
        """The source as a producer: named for it, scoped to what its mapping produces."""
        return ApiKey(key_id=f"source-{self.name}", name=self.name,
                      event_types=self.mapping.event_types, sha256="", created_at=0)


def mapping_files(env: Env) -> list[Path]:
    """Built-in mappings first, then the operator's (which win on a shared name)."""
    files = [builtin_path(name) for name in BUILTIN]
    extra = env.text(SOURCES_DIR_ENV, "")
    if extra:
        folder = Path(extra)
        if not folder.is_dir():
            raise MappingError(extra, [f"{SOURCES_DIR_ENV}: not a directory"])
        files += sorted(folder.glob("*.yaml"))
    return files


def load_sources(environ: Env | Mapping[str, str] | None = None) -> dict[str, Source]:
    """Every source by name; :class:`MappingError` (all problems of all files) if a
    mapping is unusable, so ingest does not start with a broken source."""
    env = Env.of(environ)
    sources: dict[str, Source] = {}
    errors: list[str] = []
    for path in mapping_files(env):
        try:
            mapping = load_mapping(path)
        except MappingError as exc:
            errors += [f"{exc.source}: {e}" for e in exc.errors]
            continue
        sources[mapping.source] = Source(mapping, secrets_from(mapping.auth, env))
    if errors:
        raise MappingError("source mappings", errors)
    return sources
