"""One :class:`KafkaSettings`, spoken in each Kafka client library's own options.

signalbox builds clients with three libraries: aiokafka (ingest, dispatcher,
scheduler), confluent-kafka/librdkafka (topic administration) and Faust (the
evaluator, on aiokafka underneath). Every client gets its connection and
security options from one of these functions, so a secured cluster needs
nothing but the ``KAFKA_*`` variables.
"""

from __future__ import annotations

import ssl
from typing import Any

import faust
from aiokafka.helpers import create_ssl_context
from faust.types.auth import CredentialsT

from signalbox.common.settings import KafkaSettings


def ssl_context(k: KafkaSettings) -> ssl.SSLContext | None:
    """The client TLS context (hostname checked), or ``None`` for a protocol without TLS."""
    if not k.uses_tls:
        return None
    context: ssl.SSLContext = create_ssl_context(
        cafile=k.ssl_ca_file or None, certfile=k.ssl_cert_file or None,
        keyfile=k.ssl_key_file or None)
    return context


def aiokafka_options(k: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for ``AIOKafkaProducer``/``AIOKafkaConsumer``."""
    options: dict[str, Any] = {"bootstrap_servers": k.bootstrap_servers,
                               "security_protocol": k.security_protocol}
    if k.uses_sasl:
        options.update(sasl_mechanism=k.sasl_mechanism, sasl_plain_username=k.sasl_username,
                       sasl_plain_password=k.sasl_password)
    if k.uses_tls:
        options["ssl_context"] = ssl_context(k)
    return options


def librdkafka_config(k: KafkaSettings) -> dict[str, str | int | float | bool]:
    """A confluent-kafka (librdkafka) configuration: connection and security properties.

    Without ``ssl.ca.location`` librdkafka verifies the broker against the system's
    CA certificates, as the other clients do.
    """
    config: dict[str, str | int | float | bool] = {
        "bootstrap.servers": k.bootstrap_servers, "security.protocol": k.security_protocol}
    if k.uses_sasl:
        config.update({"sasl.mechanism": k.sasl_mechanism, "sasl.username": k.sasl_username,
                       "sasl.password": k.sasl_password})
    files = {"ssl.ca.location": k.ssl_ca_file, "ssl.certificate.location": k.ssl_cert_file,
             "ssl.key.location": k.ssl_key_file}
    config.update({name: path for name, path in files.items() if path and k.uses_tls})
    return config


def faust_broker(k: KafkaSettings) -> str:
    """Faust's ``broker`` URL: ``kafka://host:port`` for each bootstrap server."""
    return ";".join(f"kafka://{s.strip()}" for s in k.bootstrap_servers.split(","))


def faust_credentials(k: KafkaSettings) -> CredentialsT | None:
    """Faust's ``broker_credentials``; faust-streaming hands them on to aiokafka.

    ``SASLCredentials`` means SASL_SSL when it has an SSL context and SASL_PLAINTEXT
    without one; its mechanism (SCRAM included) goes to aiokafka unchanged.
    """
    context = ssl_context(k)
    if k.uses_sasl:
        return faust.SASLCredentials(username=k.sasl_username, password=k.sasl_password,
                                     mechanism=k.sasl_mechanism, ssl_context=context)
    if context is not None:
        return faust.SSLCredentials(context)
    return None
