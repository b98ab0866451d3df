"""Recipients in logs and outcome records: masked, so neither holds a customer's address.

Logs and ``actions.results`` are read by more people and kept longer than the
commands themselves; they name a recipient as ``a***@example.com`` or
``+49******1234`` (enough to tell two apart, not to write to one) and keep the
customer id for correlation. A driver's detail or a provider's error message may
quote the recipient in any case or, for a number, without the ``+``:
:meth:`Privacy.redact` replaces every such form of the command's recipients.

``full`` keeps addresses as they are, for development only (the dispatcher refuses
it unless it binds to loopback; see :func:`signalbox.dispatcher.main.build`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import phonenumbers


def mask_email(address: str) -> str:
    """``ada@example.com`` → ``a***@example.com``; the domain stays (it is not personal)."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_phone(number: str) -> str:
    """``+4915112341234`` → ``+49*******1234``: country code and last four digits."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in number if c.isdigit())
        return "*" * (len(digits) - 4) + digits[-4:] if len(digits) >= 8 else "***"
    national = str(parsed.national_number)
    if len(national) < 6:
        return f"+{parsed.country_code}***"
    return f"+{parsed.country_code}{'*' * (len(national) - 4)}{national[-4:]}"


def mask(channel: str, recipient: str) -> str:
    """A recipient as logs show it: emails and numbers masked, endpoint names as they are."""
    if channel == "email":
        return mask_email(recipient)
    if channel == "sms":
        return mask_phone(recipient)
    return recipient


def _forms(channel: str, recipient: str) -> set[str]:
    """The ways a text may quote ``recipient``."""
    forms = {recipient.strip()}
    if channel == "sms":
        forms.add(recipient.strip().lstrip("+"))
    return {f for f in forms if len(f) >= 3}


@dataclass(frozen=True)
class Privacy:
    full: bool = False  # development only: addresses unmasked

    def redact(self, text: str, channel: str, recipients: Iterable[str]) -> str:
        """``text`` with every form of each of ``recipients`` replaced by its mask."""
        if self.full or channel not in ("email", "sms"):
            return text
        for recipient in sorted(set(recipients), key=len, reverse=True):
            masked = mask(channel, recipient)
            for form in sorted(_forms(channel, recipient), key=len, reverse=True):
                # split and join: ``masked`` is inserted as is (re.sub would read escapes)
                pieces = re.split(re.escape(form), text, flags=re.IGNORECASE)
                text = masked.join(pieces)
        return text
