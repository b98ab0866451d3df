"""Helpers for the source tests: provider fixtures and their signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import stripe

FIXTURES = Path(__file__).parent / "fixtures"
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
