"""Delivery policy: the pure rules the dispatcher applies around each channel call.

Retry schedule, circuit breakers, rate limits, opt-outs, frequency caps and
quiet hours. Everything here takes "now" as an argument (or from an injected
:class:`~signalbox.common.clock.Clock`), so tests drive time.
"""
