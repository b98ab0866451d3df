"""SMS through Twilio's Messages API (or any provider that speaks its request format).

``POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json``, form-encoded
``To``, ``From``, ``Body``, HTTP basic auth with the account SID and auth token;
the command id goes along as ``Idempotency-Key`` for providers that honour one.
Every number is checked as E.164 with ``phonenumbers`` before anything is sent,
and the text comes from ``sms/<template>[.<locale>].txt.j2`` in the sandbox, formatted
for the customer's locale and time zone (a team's: the default locale, UTC) with the
no-break spaces CLDR puts in amounts and times made plain ones, so a text that is
otherwise GSM-7 is not sent as UCS-2 at half the length per segment.
Failures are classified by :mod:`signalbox.dispatcher.channels.provider_http`. With
several numbers, a failure after one was sent is *in doubt*: resending would
text the first number twice.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx
import phonenumbers

from signalbox.common.action_command import Command, SmsCommand
from signalbox.dispatcher.channels.base import action_of
from signalbox.dispatcher.channels.provider_http import call, new_client
from signalbox.dispatcher.channels.recipients import recipients_of
from signalbox.dispatcher.formatting import reader_of
from signalbox.dispatcher.outcomes import (
    Delivery,
    DeliveryError,
    InDoubtError,
    PermanentError,
)
from signalbox.dispatcher.providers import SmsProvider
from signalbox.dispatcher.templates import TemplateStore

MAX_BODY = 1600  # Twilio's limit for one message body
_PLAIN_SPACES = str.maketrans({"\u00a0": " ", "\u202f": " ", "\u2009": " "})


def e164_problem(number: str) -> str | None:
    """Why ``number`` is not a valid E.164 number, or None when it is one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException as exc:
        return f"{number!r} is not an E.164 number: {exc}"
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != number:
        return f"{number!r} is not in E.164 form (expected +<country code><number>, no spaces)"
    if not phonenumbers.is_valid_number(parsed):
        return f"{number!r} is not a valid phone number"
    return None


class SmsChannel:
    name = "sms"

    def __init__(self, provider: SmsProvider, templates: TemplateStore) -> None:
        self._provider = provider
        self._templates = templates
        self._url = (f"{provider.base_url}/2010-04-01/Accounts/"
                     f"{quote(provider.account_sid, safe='')}/Messages.json")
        self._client = new_client(auth=(provider.account_sid, provider.auth_token),
                                  timeout=httpx.Timeout(provider.timeout_s))

    def recipients(self, command: Command) -> tuple[str, ...]:
        return recipients_of(command)

    def endpoint(self, command: Command) -> str:
        return urlsplit(self._provider.base_url).netloc

    def numbers(self, command: Command) -> tuple[str, ...]:
        """The recipients, each checked as E.164; the first bad one is a permanent error."""
        numbers = self.recipients(command)
        for i, number in enumerate(numbers):
            problem = e164_problem(number)
            if problem:
                raise PermanentError(f"sms to[{i}]: {problem}")
        return numbers

    def text(self, command: Command) -> str:
        return render_sms(self._templates, command)

    async def send(self, command: Command) -> Delivery:
        numbers, body = self.numbers(command), self.text(command)
        sent: list[str] = []
        refs: list[str] = []
        for i, number in enumerate(numbers):
            key = command.command_id if len(numbers) == 1 else f"{command.command_id}-{i}"
            try:
                response = await call(
                    self._client, "POST", self._url, f"sms POST {self.endpoint(command)}",
                    data={"To": number, "From": self._provider.from_number, "Body": body},
                    headers={"Idempotency-Key": key,
                             "X-Signalbox-Command-Id": command.command_id})
            except DeliveryError as exc:
                if sent:
                    raise InDoubtError(f"sent to {', '.join(sent)} but not to {number}: "
                                       f"{exc}") from exc
                raise
            sent.append(number)
            refs.append(str(_json(response).get("sid", "")))
        return Delivery(provider_ref=",".join(refs) or None,
                        detail=f"SMS accepted for {', '.join(sent)}")

    async def aclose(self) -> None:
        await self._client.aclose()


def render_sms(templates: TemplateStore, command: Command) -> str:
    """The text of an SMS command, checked: not empty, within the provider's limit."""
    a = action_of(command, SmsCommand)
    body = templates.sms(a.template, a.locale, a.variables, command.trigger.type,
                         reader_of(command)).translate(_PLAIN_SPACES)
    if not body:
        raise PermanentError(f"template sms/{a.template}: rendered to an empty text")
    if len(body) > MAX_BODY:
        raise PermanentError(f"template sms/{a.template}: {len(body)} characters, "
                             f"over the provider's limit of {MAX_BODY}")
    return body


def _json(response: httpx.Response) -> dict[str, object]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
