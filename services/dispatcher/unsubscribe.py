"""Signed unsubscribe tokens: the link in customer mail and the endpoint that honours it.

The token names the customer and the channel and carries an HMAC-SHA256 over both,
so the endpoint needs no lookup table and a forged or altered link is refused.
Tokens do not expire: an unsubscribe link in a years-old email must still work.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from signalbox.common.errors import SignalboxError

_SEP = "\x1f"


class BadToken(SignalboxError, ValueError):
    """The token is malformed or its signature does not match."""

    what = "unsubscribe token"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, b"signalbox-unsubscribe" + _SEP.encode() + body,
                    hashlib.sha256).digest()


def make_token(secret: bytes, customer_id: str, channel: str) -> str:
    """``<payload>.<signature>``, URL-safe."""
    body = f"{customer_id}{_SEP}{channel}".encode()
    return f"{_b64(body)}.{_b64(_mac(secret, body))}"


def read_token(secret: bytes, token: str) -> tuple[str, str]:
    """``(customer_id, channel)`` of a genuine token; raises :class:`BadToken` otherwise."""
    try:
        payload, signature = token.split(".", 1)
        body, mac = _unb64(payload), _unb64(signature)
        customer_id, channel = body.decode("utf-8").split(_SEP, 1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadToken("malformed unsubscribe token") from exc
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise BadToken("unsubscribe token signature does not match")
    return customer_id, channel


def unsubscribe_url(base_url: str, secret: bytes, customer_id: str, channel: str) -> str:
    """The link for a message's body and its ``List-Unsubscribe`` header (RFC 8058)."""
    token = quote(make_token(secret, customer_id, channel))
    return f"{base_url.rstrip('/')}/v1/unsubscribe/{token}"
