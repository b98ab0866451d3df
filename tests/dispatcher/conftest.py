"""Fixtures of the dispatcher's worker and policy tests: an SMTP server, fast back-off."""

from __future__ import annotations

from dataclasses import replace

import pytest

from signalbox.common.settings import Settings, SmtpSettings
from signalbox.testing.smtp import SmtpSink


@pytest.fixture
def dsettings(settings: Settings, smtp: SmtpSink) -> Settings:
    """``settings`` with the SMTP sink as relay and back-off in tens of milliseconds."""
    return replace(settings, dispatcher=replace(
        settings.dispatcher, smtp=SmtpSettings(port=smtp.port, timeout_s=5), backoff_s=0.05,
        backoff_cap_s=0.5, max_attempts=4))
