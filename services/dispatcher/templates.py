"""Message templates, rendered in Jinja2's sandbox with strict undefined variables.

Files: ``<dir>/email/<name>[.<locale>].{subject,txt,html}.j2``. The locale falls
back from ``de-AT`` to ``de`` to the unlocalised file; ``html`` is optional.
Operators' ``SIGNALBOX_TEMPLATES_DIR`` is searched before the built-in defaults.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, TemplateError
from jinja2.exceptions import TemplateNotFound
from jinja2.sandbox import SandboxedEnvironment


class TemplateProblem(ValueError):
    """A template that is missing or cannot be rendered: a permanent failure."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


def _default_dir() -> Path:
    return Path(str(resources.files("signalbox").joinpath("defaults", "templates")))


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
                variables: Mapping[str, str], required: bool) -> str | None:
        env = self._html_env if part == "html" else self._env
        try:
            template = env.select_template(self._candidates(channel, name, locale, part))
        except TemplateNotFound:
            if required:
                raise TemplateProblem(f"template {channel}/{name}.{part}.j2 not found") from None
            return None
        except TemplateError as exc:
            raise TemplateProblem(f"template {channel}/{name}.{part}: {exc}") from exc
        try:
            return template.render(**variables).strip() + ("\n" if part != "subject" else "")
        except TemplateError as exc:
            raise TemplateProblem(f"template {channel}/{name}.{part}: {exc}") from exc
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise TemplateProblem(f"template {channel}/{name}.{part}: {exc}") from exc

    def email(self, name: str, locale: str | None, variables: Mapping[str, str]) -> RenderedEmail:
        subject = self._render("email", name, locale, "subject", variables, True) or ""
        text = self._render("email", name, locale, "txt", variables, True) or ""
        html = self._render("email", name, locale, "html", variables, False)
        return RenderedEmail(" ".join(subject.split()), text, html)
