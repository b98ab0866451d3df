"""Templates for tests whose automations name their own (``t``, ``welcome``, ...).

Automations are checked against the templates they send (signalbox.evaluator.
template_check), so a test automation names a template that exists: these read only
variables every trigger provides. Services get them through SIGNALBOX_TEMPLATES_DIR.
"""

from __future__ import annotations

from pathlib import Path

from signalbox.evaluator.template_check import TemplateCheck

TEMPLATES_DIR = str(Path(__file__).resolve().parent / "templates")


def templates_check() -> TemplateCheck:
    """The check over these templates and the built-in ones."""
    return TemplateCheck([TEMPLATES_DIR])
