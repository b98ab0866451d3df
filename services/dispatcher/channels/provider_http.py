"""One HTTP call to a provider, with its failure classified for the delivery policy.

* no connection (refused, DNS, connect timeout, pool exhausted): the request
  never left, so it is **transient** — except a server certificate that is not
  trusted, which is a configuration problem: **permanent**;
* a timeout or lost connection after the request was sent: the provider may
  have acted, so it is **in doubt**;
* 408, 429 and 5xx: **transient** (the provider asks us to come back);
* any other 3xx or 4xx: **permanent** (redirects are not followed: a moved
  endpoint is a configuration change, not something to guess).
"""

from __future__ import annotations

from typing import Any

import httpx

from signalbox.dispatcher.channels.tls import untrusted
from signalbox.dispatcher.outcomes import InDoubtError, PermanentError, TransientError


class HttpRefused(PermanentError):
    """A provider's 3xx or 4xx answer; ``status`` lets a driver recognise one it can handle."""

    what = "provider answer"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def retried_status(status: int) -> bool:
    """An HTTP answer that asks us to come back: retried (docs/delivery.md, Retries)."""
    return status in (408, 429) or status >= 500


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)


def new_client(**kwargs: Any) -> httpx.AsyncClient:
    """A client for one channel: no redirects followed, signalbox as the user agent."""
    return httpx.AsyncClient(follow_redirects=False, headers={"User-Agent": "signalbox"},
                             **kwargs)


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:300] + ("…" if len(text) > 300 else "")


async def call(client: httpx.AsyncClient, method: str, url: str, what: str,
               **kwargs: Any) -> httpx.Response:
    """Send one request; return a 2xx response or raise the classified error.

    ``what`` names the call in errors (``sms POST api.twilio.com``).
    """
    try:
        response = await client.request(method, url, **kwargs)
    except _NOT_SENT as exc:
        if untrusted(exc):
            raise PermanentError(f"{what}: TLS certificate not trusted (a private CA needs "
                                 f"ca_file): {exc}") from exc
        raise TransientError(f"{what}: cannot connect: {type(exc).__name__}: {exc}") from exc
    except httpx.TimeoutException as exc:
        raise InDoubtError(f"{what}: no answer in time after the request was sent "
                           f"({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        if isinstance(exc, httpx.UnsupportedProtocol):
            raise PermanentError(f"{what}: {exc}") from exc
        raise InDoubtError(f"{what}: connection lost after the request was sent: "
                           f"{type(exc).__name__}: {exc}") from exc
    status = response.status_code
    if 200 <= status < 300:
        return response
    reason = f"{what}: HTTP {status}: {_excerpt(response)}"
    if retried_status(status):
        retry_after = response.headers.get("Retry-After")
        raise TransientError(reason + (f" (Retry-After: {retry_after})" if retry_after else ""))
    raise HttpRefused(reason, status)
