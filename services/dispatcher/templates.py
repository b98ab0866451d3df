"""Message templates, rendered in Jinja2's sandbox with strict undefined variables.

Files: ``<dir>/email/<name>[.<locale>].{subject,txt,html}.j2`` and
``<dir>/sms/<name>[.<locale>].txt.j2``. The locale falls back from ``de-AT`` to
``de`` to the unlocalised file; ``html`` is optional. Operators'
``SIGNALBOX_TEMPLATES_DIR`` is searched before the built-in defaults. Short
inline templates (CRM parameters, REST bodies, export file names) come from
configuration or commands and are rendered in the same sandbox.

Every trigger has a template of its own name, dots as underscores (``payment.failed``:
``payment_failed``; ``<name>_alert`` for a team). The built-in defaults hold one for most
triggers; a trigger without one gets the neutral fallback, chosen by this rule: when an
automation names its *own trigger's* template (``custom_field_changed`` on
``custom_field.changed``) and no file of that name exists in any locale, ``notification``
is used (``alert`` for ``<name>_alert``). Any other missing name is an error, so a typo
is never papered over, and an operator's file of the trigger's name replaces the
fallback. Money, dates and times are formatted with :mod:`signalbox.dispatcher.formatting`
for the reader (:class:`~signalbox.dispatcher.formatting.Reader`) the channel passes.

Every problem — a missing file, an undefined variable, a syntax error, a
sandbox violation — is a :class:`TemplateProblem` (a ``PermanentError``) naming
the template and the problem: retrying cannot fix it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateError,
    meta,
)
from jinja2.exceptions import (
    SecurityError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.sandbox import SandboxedEnvironment

from signalbox.dispatcher.formatting import FILTERS, Reader, reader, reading_as
from signalbox.dispatcher.outcomes import PermanentError

#: The neutral templates for triggers without one of their own (customer, team).
NEUTRAL, NEUTRAL_ALERT = "notification", "alert"
PARTS = {"email": ("subject", "txt", "html"), "sms": ("txt",)}


class TemplateProblem(PermanentError, ValueError):
    """A template that is missing or cannot be rendered: a permanent failure.

    It *is* a :class:`PermanentError`, so a channel lets it propagate as one.
    """

    what = "template"


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


def trigger_template(trigger: str) -> str:
    """The template name of a trigger: ``payment.failed`` → ``payment_failed``."""
    return trigger.replace(".", "_")


def fallback_for(name: str, trigger: str) -> str | None:
    """The neutral template that stands in for ``name`` on ``trigger``, if the rule allows."""
    if not trigger:
        return None
    own = trigger_template(trigger)
    if name == own:
        return NEUTRAL
    if name == f"{own}_alert":
        return NEUTRAL_ALERT
    return None


def _default_dir() -> Path:
    return Path(str(resources.files("signalbox").joinpath("defaults", "templates")))


def _reason(exc: Exception) -> str:
    """What went wrong, in the words an operator needs."""
    if isinstance(exc, UndefinedError):
        return f"undefined variable: {exc.message}"
    if isinstance(exc, SecurityError):
        return f"sandbox violation: {exc.message}"
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error at line {exc.lineno}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


_RENDER_ERRORS = (TemplateError, ValueError, TypeError, ArithmeticError, LookupError)


class TemplateStore:
    def __init__(self, directories: Sequence[str | Path] = ()) -> None:
        dirs = [str(d) for d in directories if d] + [str(_default_dir())]
        self._env = SandboxedEnvironment(
            loader=ChoiceLoader([FileSystemLoader(d) for d in dirs]),
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
        )
        self._env.filters.update(FILTERS)
        self._html_env = self._env.overlay(autoescape=True)
        self._inline: dict[str, Template] = {}

    @property
    def environment(self) -> SandboxedEnvironment:
        """The sandbox every template renders in: the automation check parses with it."""
        return self._env

    def _candidates(self, channel: str, name: str, locale: str | None, part: str) -> list[str]:
        tags: list[str] = []
        if locale:
            tags.append(locale)
            if "-" in locale:
                tags.append(locale.split("-", 1)[0])
        return [f"{channel}/{name}.{tag}.{part}.j2" for tag in tags] + [
            f"{channel}/{name}.{part}.j2"
        ]

    def _exists(self, channel: str, name: str, locale: str | None, part: str) -> bool:
        try:
            self._env.select_template(self._candidates(channel, name, locale, part))
        except TemplateNotFound:
            return False
        except TemplateError:
            return True  # there, but broken: rendering it names the problem
        return True

    def resolve(self, channel: str, name: str, locale: str | None, trigger: str = "") -> str:
        """The template name a message uses: ``name``, or the neutral fallback when ``name``
        is ``trigger``'s own template and has no file in any locale (see the module doc).
        Whether the resolved name exists is checked when it renders."""
        first = PARTS[channel][0]
        fallback = fallback_for(name, trigger)
        if fallback is None or self._exists(channel, name, locale, first):
            return name
        return fallback

    def _render(self, channel: str, name: str, locale: str | None, part: str,
                variables: Mapping[str, Any], required: bool) -> str | None:
        env = self._html_env if part == "html" else self._env
        where = f"template {channel}/{name}.{part}"
        try:
            template = env.select_template(self._candidates(channel, name, locale, part))
        except TemplateNotFound:
            if required:
                tried = ", ".join(self._candidates(channel, name, locale, part))
                raise TemplateProblem(f"{where}: not found (looked for {tried})") from None
            return None
        except TemplateError as exc:
            raise TemplateProblem(f"{where}: {_reason(exc)}") from exc
        try:
            return template.render(**variables).strip() + ("\n" if part != "subject" else "")
        except _RENDER_ERRORS as exc:
            raise TemplateProblem(f"{where}: {_reason(exc)}") from exc

    def email(self, name: str, locale: str | None, variables: Mapping[str, Any],
              trigger: str = "", who: Reader | None = None) -> RenderedEmail:
        """Subject, text and (optional) HTML of ``name`` for ``trigger``, formatted for
        ``who`` (default: :data:`~signalbox.dispatcher.formatting.DEFAULT_LOCALE`, UTC)."""
        name = self.resolve("email", name, locale, trigger)
        variables = {"unsubscribe_url": "", **variables}  # "" unless the channel has a link
        with reading_as(who or reader(None, None)):
            subject = self._render("email", name, locale, "subject", variables, True) or ""
            text = self._render("email", name, locale, "txt", variables, True) or ""
            html = self._render("email", name, locale, "html", variables, False)
        return RenderedEmail(" ".join(subject.split()), text, html)

    def sms(self, name: str, locale: str | None, variables: Mapping[str, Any],
            trigger: str = "", who: Reader | None = None) -> str:
        """The text of ``sms/<name>[.<locale>].txt.j2``, without surrounding blank space."""
        name = self.resolve("sms", name, locale, trigger)
        with reading_as(who or reader(None, None)):
            return (self._render("sms", name, locale, "txt", variables, True) or "").strip()

    def variables_used(self, channel: str, name: str, locale: str | None,
                       trigger: str = "") -> dict[str, frozenset[str]]:
        """The variables each part of a message reads (``{"subject": {...}, ...}``), through
        every template it extends or includes: what a trigger must provide. Parts without
        a file are left out; a missing or broken file is a :class:`TemplateProblem`."""
        name = self.resolve(channel, name, locale, trigger)
        out: dict[str, frozenset[str]] = {}
        for part in PARTS[channel]:
            where = f"template {channel}/{name}.{part}"
            try:
                template = self._env.select_template(
                    self._candidates(channel, name, locale, part))
            except TemplateNotFound:
                if part == PARTS[channel][0] or (channel == "email" and part == "txt"):
                    tried = ", ".join(self._candidates(channel, name, locale, part))
                    raise TemplateProblem(f"{where}: not found (looked for {tried})") from None
                continue
            except TemplateError as exc:
                raise TemplateProblem(f"{where}: {_reason(exc)}") from exc
            out[part] = self._names_read(template.name or "", where)
        return out

    def _names_read(self, first: str, where: str) -> frozenset[str]:
        names: set[str] = set()
        pending, seen = [first], set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            try:
                source, _, _ = self._env.loader.get_source(self._env, current)  # type: ignore[union-attr]
                tree = self._env.parse(source)
            except TemplateError as exc:
                raise TemplateProblem(f"{where} ({current}): {_reason(exc)}") from exc
            names |= meta.find_undeclared_variables(tree)
            pending.extend(t for t in meta.find_referenced_templates(tree) if t is not None)
        return frozenset(names)

    def inline(self, source: str, variables: Mapping[str, Any], where: str) -> str:
        """Render a short template string; ``where`` names it in errors (``crm.params.tag``)."""
        try:
            template = self._inline.get(source)
            if template is None:
                template = self._env.from_string(source)
                if len(self._inline) < 4096:
                    self._inline[source] = template
            return template.render(**variables)
        except _RENDER_ERRORS as exc:
            raise TemplateProblem(f"template {where}: {_reason(exc)}") from exc
