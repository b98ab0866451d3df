"""Opt-outs from the outside world, on the dispatcher's HTTP server.

* ``GET /v1/unsubscribe/{token}``: a confirmation page with one button; a GET
  changes nothing, because mail scanners follow links.
* ``POST /v1/unsubscribe/{token}``: unsubscribes — the page's button, and the
  RFC 8058 one-click request mail clients send (``List-Unsubscribe=One-Click``).
  The token (:mod:`signalbox.dispatcher.unsubscribe`) names customer and channel.
* ``POST /v1/sms/inbound``: Twilio's incoming-message webhook (form fields
  ``From``, ``Body``). STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT suppresses
  SMS to that number; START, UNSTOP or YES lifts it. With an SMS provider
  configured, the ``X-Twilio-Signature`` header must verify against its auth token
  (HMAC-SHA1 over the URL Twilio called and the sorted form fields).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from html import escape

import structlog
from aiohttp import web

from signalbox.dispatcher.suppressions import Suppressions
from signalbox.dispatcher.unsubscribe import BadToken, read_token

log = structlog.get_logger(__name__)

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's request signature: base64 HMAC-SHA1 of the URL plus sorted name+value pairs."""
    data = url + "".join(f"{k}{params[k]}" for k in sorted(params))
    return base64.b64encode(hmac.new(auth_token.encode(), data.encode(), hashlib.sha1)
                            .digest()).decode()


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"</head><body><h1>{escape(title)}</h1>{body}</body></html>")
    return web.Response(text=html, content_type="text/html", status=status)


class OptOutApi:
    def __init__(self, suppressions: Suppressions, unsubscribe_secret: str,
                 sms_auth_token: str = "", public_url: str = "") -> None:
        self._suppressions = suppressions
        self._secret = unsubscribe_secret.encode()
        self._sms_token = sms_auth_token
        self._public_url = public_url.rstrip("/")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/unsubscribe/{token}", self.confirm)
        app.router.add_post("/v1/unsubscribe/{token}", self.unsubscribe)
        app.router.add_post("/v1/sms/inbound", self.sms_inbound)

    def _token(self, request: web.Request) -> tuple[str, str] | web.Response:
        if not self._secret:
            return _page("Unsubscribe links are not enabled here",
                         "<p>SIGNALBOX_UNSUBSCRIBE_SECRET is not set.</p>", 404)
        try:
            return read_token(self._secret, request.match_info["token"])
        except BadToken as exc:
            return _page("This unsubscribe link is not valid",
                         f"<p>{escape(str(exc))}. Please use the link from the latest "
                         "message.</p>", 400)

    async def confirm(self, request: web.Request) -> web.Response:
        found = self._token(request)
        if isinstance(found, web.Response):
            return found
        _, channel = found
        return _page(f"Unsubscribe from {channel} messages?",
                     f"<form method='post' action='{escape(request.path)}'>"
                     "<input type='hidden' name='List-Unsubscribe' value='One-Click'>"
                     "<button type='submit'>Unsubscribe</button></form>")

    async def unsubscribe(self, request: web.Request) -> web.Response:
        found = self._token(request)
        if isinstance(found, web.Response):
            return found
        customer_id, channel = found
        await self._suppressions.record(channel, "customer", customer_id, True,
                                        "unsubscribe link")
        return _page("You are unsubscribed",
                     f"<p>You will get no more {escape(channel)} messages from us.</p>")

    async def sms_inbound(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if self._sms_token:
            url = (self._public_url + request.path_qs) if self._public_url else str(request.url)
            given = request.headers.get("X-Twilio-Signature", "")
            if not hmac.compare_digest(given, twilio_signature(self._sms_token, url, form)):
                log.warning("sms_inbound_bad_signature", url=url)
                return web.Response(status=403, text="X-Twilio-Signature does not verify")
        number, word = form.get("From", "").strip(), form.get("Body", "").strip().upper()
        if not number:
            return web.Response(status=400, text="form field From is required")
        if word in STOP_WORDS:
            await self._suppressions.record("sms", "address", number, True, f"SMS {word}")
        elif word in START_WORDS:
            await self._suppressions.record("sms", "address", number, False, f"SMS {word}")
        return web.Response(text=_TWIML_EMPTY, content_type="application/xml")
