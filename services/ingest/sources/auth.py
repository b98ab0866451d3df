"""How a webhook proves it comes from its source: the source's secret is its credential.

Three schemes, as the billing systems document them:

* ``stripe``: the ``Stripe-Signature`` header, verified with the official ``stripe``
  library (``WebhookSignature.verify_header``: HMAC-SHA256 of ``<t>.<body>``, and the
  timestamp within ``tolerance_s``). Several endpoint secrets may be valid at once, so
  a secret is rotated without losing a webhook.
* ``basic``: HTTP basic auth on the webhook URL (Chargebee's scheme); ``user:password``
  pairs.
* ``hmac-sha256``: base64 (or hex) HMAC-SHA256 of the raw body in a header (Lago's
  ``X-Lago-Signature`` with ``X-Lago-Signature-Algorithm: hmac``).

Secrets come from the environment variable the mapping names (``secrets_env``),
comma-separated; never from the mapping file, which is meant to be committed.
Comparisons are constant-time. A refusal says why (no header, no matching secret,
stale timestamp), never the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from signalbox.common.env import Env
from signalbox.ingest.sources.mapping import Auth

STRIPE_HEADER = "Stripe-Signature"


@dataclass(frozen=True)
class Denied:
    """Why a webhook was not accepted as the source's; ``code`` labels the metric."""

    code: str
    reason: str


def secrets_from(auth: Auth, env: Env) -> tuple[str, ...]:
    """The secrets in the mapping's environment variable (none: the source is off)."""
    return env.items(auth.secrets_env)


def verify(auth: Auth, secrets: tuple[str, ...], headers: Mapping[str, str],
           body: bytes) -> Denied | None:
    """``None`` when the request carries a valid proof under one of ``secrets``."""
    if auth.scheme == "stripe":
        return _stripe(secrets, headers.get(STRIPE_HEADER), body, auth.tolerance_s)
    if auth.scheme == "basic":
        return _basic(secrets, headers.get("Authorization"))
    return _hmac(secrets, auth, headers.get(auth.header), body)


def _stripe(secrets: tuple[str, ...], header: str | None, body: bytes,
            tolerance_s: int) -> Denied | None:
    import stripe  # 0.4 s to import: only where Stripe signatures are checked

    if not header:
        return Denied("missing_signature", f"no {STRIPE_HEADER} header: only Stripe's "
                                           "signed webhooks are accepted here")
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        return Denied("bad_signature", "the body is not UTF-8 text")
    stale = False
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, header, secret, tolerance_s)
            return None
        except stripe.SignatureVerificationError as exc:
            stale = stale or "tolerance" in str(exc)
    if stale:
        return Denied("stale_timestamp", f"the {STRIPE_HEADER} timestamp is more than "
                                         f"{tolerance_s} s old (a replayed request?)")
    return Denied("bad_signature", f"{STRIPE_HEADER} matches no configured endpoint secret "
                                   "(wrong secret, or the body was altered)")


def _basic(secrets: tuple[str, ...], header: str | None) -> Denied | None:
    if not header:
        return Denied("missing_signature", "no Authorization header: this source "
                                           "authenticates with HTTP basic auth")
    scheme, _, encoded = header.strip().partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    if scheme.lower() != "basic" or not given:
        return Denied("bad_signature", "the Authorization header must be 'Basic <base64>'")
    if any(hmac.compare_digest(given, s.encode("utf-8")) for s in secrets):
        return None
    return Denied("bad_signature", "unknown user name or password")


def _hmac(secrets: tuple[str, ...], auth: Auth, header: str | None,
          body: bytes) -> Denied | None:
    if not header:
        return Denied("missing_signature", f"no {auth.header} header: this source signs "
                                           "its webhooks with HMAC-SHA256")
    for secret in secrets:
        digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
        expected = (base64.b64encode(digest).decode() if auth.encoding == "base64"
                    else digest.hex())
        if hmac.compare_digest(expected, header.strip()):
            return None
    return Denied("bad_signature", f"{auth.header} matches no configured secret (wrong "
                                   "secret, or the body was altered)")
