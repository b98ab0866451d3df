"""A local server that speaks Twilio's Messages API and checks every request's format.

``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``: basic auth with the
account SID and auth token, form-encoded ``To`` (E.164), ``From``, ``Body``.
Answers like Twilio: 201 with the message resource, or 4xx with ``code`` and
``message`` (20003 bad credentials, 21211 invalid To, 21602 no Body, 21617 too
long). A repeated ``Idempotency-Key`` gets the first answer back and sends nothing.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from signalbox.testing.fakes.server import FakeServer

E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


@dataclass(frozen=True)
class Sms:
    sid: str
    to: str
    from_: str
    body: str
    idempotency_key: str | None


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message, "status": status,
                              "more_info": f"https://www.twilio.com/docs/errors/{code}"},
                             status=status)


class FakeTwilio(FakeServer):
    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "secret-token",
                 port: int | None = None) -> None:
        super().__init__(port)
        self.account_sid, self.auth_token = account_sid, auth_token
        self.messages: list[Sms] = []
        self._by_key: dict[str, dict[str, Any]] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create)

    def _authorised(self, request: web.Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return (request.match_info["sid"] == self.account_sid
                and request.headers.get("Authorization") == f"Basic {expected}")

    async def _create(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        if request.content_type != "application/x-www-form-urlencoded":
            return _error(400, 21600, f"expected a form body, got {request.content_type}")
        form = await request.post()
        to, sender, body = (str(form.get(k, "")) for k in ("To", "From", "Body"))
        if not E164.match(to):
            return _error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 "
                                      "character limit.")
        key = request.headers.get("Idempotency-Key")
        with self.lock:
            if key and key in self._by_key:
                return web.json_response(self._by_key[key], status=201)
            sms = Sms("SM" + uuid.uuid4().hex, to, sender, body, key)
            self.messages.append(sms)
            resource = {"sid": sms.sid, "account_sid": self.account_sid, "to": to,
                        "from": sender, "body": body, "status": "queued", "num_segments": "1",
                        "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sms.sid}.json"}
            if key:
                self._by_key[key] = resource
        return web.json_response(resource, status=201)
