"""signalbox: automations for subscription businesses, on Kafka.

One distribution, four services (``signalbox ingest|evaluator|dispatcher|scheduler``)
sharing the small :mod:`signalbox.common` package.
"""

__version__ = "0.1.0"
