"""Recognising a certificate the client does not trust, wherever a library wraps it.

Every channel treats it as permanent: it is a configuration problem (a private
CA not configured, a wrong host name), and retrying for hours only hides it.
"""

from __future__ import annotations

import ssl


def untrusted(exc: BaseException | None) -> bool:
    """Whether ``exc`` or anything it was raised from is a certificate verification failure."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False
