"""Helpers for the source tests: provider fixtures and their signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import stripe

FIXTURES = Path(__file__).parent / "fixtures"
#: Dunning for a failed Stripe payment of the fixtures' product (unit and e2e tests).
STRIPE_DUNNING = """
format: signalbox/automations@2
automations:
  - id: stripe-payment-failed
    version: 1
    trigger: {type: payment.failed, product: prod_Pro}
    actions: [{type: email, to: customer, template: payment_failed}]
"""
STRIPE_SECRET = "whsec_test_7f3c0c1e2a9b4d6e8f0a1b2c3d4e5f60"
STRIPE_OLD_SECRET = "whsec_test_old_0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def fixture(source: str, name: str) -> dict[str, Any]:
    """One payload in the provider's documented shape (see fixtures/README.md)."""
    loaded: dict[str, Any] = json.loads((FIXTURES / source / f"{name}.json").read_text())
    return loaded


def fixture_names(source: str) -> list[str]:
    return sorted(p.stem for p in (FIXTURES / source).glob("*.json"))


def stripe_signed(event: dict[str, Any], secret: str = STRIPE_SECRET,
                  timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and headers Stripe sends, signed with the stripe library's own helper."""
    body = json.dumps(event, indent=2)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp)
    return body.encode(), {"Stripe-Signature": header, "Content-Type": "application/json"}

CHARGEBEE_CREDENTIALS = "signalbox:7d1f0c9a2b3e4f5a6b7c8d9e"
LAGO_HMAC_KEY = "lago_hmac_3c4d5e6f7a8b9c0d1e2f3a4b"


def basic_auth(credentials: str) -> str:
    """An ``Authorization`` header value for HTTP basic auth (Chargebee's webhook scheme)."""
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def lago_signed(payload: dict[str, Any], key: str = LAGO_HMAC_KEY,
                unique_key: str = "5f0d6a4e-2b1c-4c33-9e0b-6d1c2f3a4b5c"
                ) -> tuple[bytes, dict[str, str]]:
    """The body and headers Lago sends with an HMAC signature: base64(HMAC-SHA256(body))."""
    body = json.dumps(payload).encode()
    signature = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())
    return body, {"X-Lago-Signature": signature.decode(), "X-Lago-Signature-Algorithm": "hmac",
                  "X-Lago-Unique-Key": unique_key, "Content-Type": "application/json"}
