"""KafkaSettings in each client library's terms: aiokafka, librdkafka and Faust.

No broker here (the SASL listener is exercised in tests/e2e/test_sasl.py). The
options are handed to the real client constructors, which reject what they do
not understand, and Faust's own credentials translation is compared with ours.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace

import faust
import pytest
from aiokafka import AIOKafkaProducer
from confluent_kafka.admin import AdminClient
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from signalbox.common.kafka import (
    aiokafka_options,
    faust_broker,
    faust_credentials,
    librdkafka_config,
)
from signalbox.common.settings import KafkaSettings
from tests.common.conftest import TlsFiles

SERVERS = "kafka-1:9092,kafka-2:9092"
PLAINTEXT = KafkaSettings(bootstrap_servers=SERVERS)


def _with_sasl(k: KafkaSettings, mechanism: str) -> KafkaSettings:
    return replace(k, sasl_mechanism=mechanism, sasl_username="signalbox",
                   sasl_password="s3cret")


def _sasl(protocol: str, mechanism: str) -> KafkaSettings:
    return _with_sasl(replace(PLAINTEXT, security_protocol=protocol), mechanism)


def _tls(tls: TlsFiles, protocol: str = "SSL", mutual: bool = False) -> KafkaSettings:
    k = replace(PLAINTEXT, security_protocol=protocol, ssl_ca_file=tls.cert)
    if protocol == "SASL_SSL":
        k = _with_sasl(k, "SCRAM-SHA-512")
    return replace(k, ssl_cert_file=tls.cert, ssl_key_file=tls.key) if mutual else k


def _auth(options: Mapping[str, object]) -> dict[str, object]:
    """The options but the servers and the TLS context (compared on their own)."""
    return {name: value for name, value in options.items()
            if name not in ("bootstrap_servers", "ssl_context")}


def test_plaintext() -> None:
    assert aiokafka_options(PLAINTEXT) == {"bootstrap_servers": SERVERS,
                                           "security_protocol": "PLAINTEXT"}
    assert librdkafka_config(PLAINTEXT) == {"bootstrap.servers": SERVERS,
                                            "security.protocol": "PLAINTEXT"}
    assert faust_credentials(PLAINTEXT) is None
    assert faust_broker(PLAINTEXT) == "kafka://kafka-1:9092;kafka://kafka-2:9092"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext(mechanism: str) -> None:
    k = _sasl("SASL_PLAINTEXT", mechanism)
    assert aiokafka_options(k) == {
        "bootstrap_servers": SERVERS, "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism, "sasl_plain_username": "signalbox",
        "sasl_plain_password": "s3cret"}
    assert librdkafka_config(k) == {
        "bootstrap.servers": SERVERS, "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism, "sasl.username": "signalbox", "sasl.password": "s3cret"}
    credentials = faust_credentials(k)
    assert isinstance(credentials, faust.SASLCredentials)
    # What Faust hands to aiokafka for its consumers and producers: the same as ours.
    assert credentials_to_aiokafka_auth(credentials) == {
        **_auth(aiokafka_options(k)), "ssl_context": None}
    assert "s3cret" not in repr(credentials)


def test_ssl_trusts_the_ca_file_only_and_checks_the_hostname(tls_files: TlsFiles) -> None:
    k = _tls(tls_files)
    options = aiokafka_options(k)
    context = options.pop("ssl_context")
    assert options == {"bootstrap_servers": SERVERS, "security_protocol": "SSL"}
    assert isinstance(context, ssl.SSLContext)
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName",
                                                                  "signalbox-test"),),)]
    assert librdkafka_config(k) == {"bootstrap.servers": SERVERS, "security.protocol": "SSL",
                                    "ssl.ca.location": tls_files.cert}
    credentials = faust_credentials(k)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials_to_aiokafka_auth(credentials)["security_protocol"] == "SSL"
    assert credentials.context.get_ca_certs() == context.get_ca_certs()


def test_ssl_without_a_ca_file_uses_the_system_trust_store() -> None:
    k = replace(PLAINTEXT, security_protocol="SSL")
    context = aiokafka_options(k)["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    system = ssl.create_default_context()
    assert context.cert_store_stats() == system.cert_store_stats()
    assert librdkafka_config(k) == {"bootstrap.servers": SERVERS, "security.protocol": "SSL"}


def test_sasl_ssl_with_mutual_tls(tls_files: TlsFiles) -> None:
    k = _tls(tls_files, "SASL_SSL", mutual=True)
    options = aiokafka_options(k)
    assert options["bootstrap_servers"] == SERVERS
    assert _auth(options) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "signalbox",
        "sasl_plain_password": "s3cret"}
    assert librdkafka_config(k) == {
        "bootstrap.servers": SERVERS, "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "signalbox",
        "sasl.password": "s3cret", "ssl.ca.location": tls_files.cert,
        "ssl.certificate.location": tls_files.cert, "ssl.key.location": tls_files.key}
    credentials = faust_credentials(k)
    assert isinstance(credentials, faust.SASLCredentials)
    faust_options = credentials_to_aiokafka_auth(credentials)
    assert _auth(faust_options) == _auth(options)
    assert faust_options["ssl_context"] is not None


@pytest.fixture
async def tls_server(tls_files: TlsFiles) -> AsyncIterator[tuple[int, asyncio.Queue[object]]]:
    """A loopback TLS server that requires a client certificate signed by the test CA."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls_files.cert)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    context.verify_mode = ssl.CERT_REQUIRED
    peers: asyncio.Queue[object] = asyncio.Queue()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await peers.put(writer.get_extra_info("peercert"))
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    yield server.sockets[0].getsockname()[1], peers
    server.close()
    await server.wait_closed()


async def test_the_tls_context_verifies_the_broker_and_presents_the_client_certificate(
        tls_files: TlsFiles, tls_server: tuple[int, asyncio.Queue[object]]) -> None:
    port, peers = tls_server
    context = aiokafka_options(_tls(tls_files, mutual=True))["ssl_context"]
    _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    peer = await asyncio.wait_for(peers.get(), 5)
    writer.close()
    assert isinstance(peer, dict)
    assert peer["subject"] == ((("commonName", "signalbox-test"),),)

    untrusting = aiokafka_options(replace(_tls(tls_files, mutual=True), ssl_ca_file=""))
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection("127.0.0.1", port, ssl=untrusting["ssl_context"])


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
async def test_the_clients_accept_the_options(protocol: str, tls_files: TlsFiles) -> None:
    k = {"PLAINTEXT": PLAINTEXT, "SSL": _tls(tls_files, mutual=True),
         "SASL_PLAINTEXT": _sasl(protocol, "SCRAM-SHA-256"),
         "SASL_SSL": _tls(tls_files, protocol, mutual=True)}[protocol]
    k = replace(k, bootstrap_servers="127.0.0.1:1")  # nothing listens: no connection
    AdminClient(librdkafka_config(k))  # librdkafka checks names, values and the PEM files
    producer = AIOKafkaProducer(**aiokafka_options(k))  # aiokafka checks the options
    await producer.stop()  # never started: closed, not left to the garbage collector
    faust.App("t", broker=faust_broker(k), broker_credentials=faust_credentials(k))


def test_the_password_stays_out_of_the_repr() -> None:
    k = _sasl("SASL_SSL", "PLAIN")
    assert "s3cret" not in repr(k)
    assert "s3cret" not in repr(faust_credentials(k))
