"""Exponential back-off with full jitter (AWS architecture blog, "Exponential Backoff And Jitter").

``delay = uniform(0, min(cap, base * 2 ** (attempt - 1)))``: retries of many
commands failing together spread out instead of hammering a recovering provider.
"""

from __future__ import annotations

import random

from signalbox.dispatcher.policy.rules import ChannelPolicy


def backoff_seconds(policy: ChannelPolicy, attempt: int, rng: random.Random) -> float:
    """The wait before the retry that follows failed attempt number ``attempt`` (1-based)."""
    ceiling = min(policy.backoff_cap_seconds, policy.backoff_seconds * 2 ** max(0, attempt - 1))
    return rng.uniform(0, ceiling)
