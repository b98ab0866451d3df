"""Message templates, rendered in Jinja2's sandbox with strict undefined variables.

Files: ``<dir>/email/<name>[.<locale>].{subject,txt,html}.j2`` and
``<dir>/sms/<name>[.<locale>].txt.j2``. The locale falls back from ``de-AT`` to
``de`` to the unlocalised file; ``html`` is optional. Operators'
``SIGNALBOX_TEMPLATES_DIR`` is searched before the built-in defaults. Short
inline templates (CRM parameters, REST bodies, export file names) come from
configuration or commands and are rendered in the same sandbox.

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

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.exceptions import (
    SecurityError,
    TemplateNotFound,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.sandbox import SandboxedEnvironment

from signalbox.dispatcher.model import PermanentError


class TemplateProblem(PermanentError, ValueError):
    """A template that is missing or cannot be rendered: a permanent failure.

    It *is* a :class:`PermanentError`, so a channel lets it propagate as one.
    """


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


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
        self._html_env = self._env.overlay(autoescape=True)
        self._inline: dict[str, Template] = {}

    def _candidates(self, channel: str, name: str, locale: str | None, part: str) -> list[str]:
        tags: list[str] = []
        if locale:
            tags.append(locale)
            if "-" in locale:
                tags.append(locale.split("-", 1)[0])
        return [f"{channel}/{name}.{tag}.{part}.j2" for tag in tags] + [
            f"{channel}/{name}.{part}.j2"
        ]

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

    def email(self, name: str, locale: str | None,
              variables: Mapping[str, Any]) -> RenderedEmail:
        subject = self._render("email", name, locale, "subject", variables, True) or ""
        text = self._render("email", name, locale, "txt", variables, True) or ""
        html = self._render("email", name, locale, "html", variables, False)
        return RenderedEmail(" ".join(subject.split()), text, html)

    def sms(self, name: str, locale: str | None, variables: Mapping[str, Any]) -> str:
        """The text of ``sms/<name>[.<locale>].txt.j2``, without surrounding blank space."""
        return (self._render("sms", name, locale, "txt", variables, True) or "").strip()

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
