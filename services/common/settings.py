"""One frozen settings object, read once from the environment.

Every default works on a fresh machine with ``make run`` (broker on
127.0.0.1:9092, SMTP capture on 127.0.0.1:2525). A malformed value fails at
start-up with the variable's name and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from signalbox.common.env import Env, one_of
from signalbox.common.env import SettingsError as SettingsError

EVALUATOR_STORES = ("memory://", "rocksdb://")  # the Faust table stores signalbox ships
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class KafkaSettings:
    """Where the cluster is, how topics are named, and how clients authenticate.

    ``security_protocol`` is one of :data:`SECURITY_PROTOCOLS`. With ``SASL_*`` the
    mechanism, username and password are set. With ``SSL``/``SASL_SSL`` the broker is
    verified against the CA file if one is given (it then replaces the system trust
    store), and a client certificate and key may be set for mutual TLS.
    The translations into each client library's options are in ``signalbox.common.kafka``.
    """

    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = ""
    partitions: int = 4
    replication_factor: int = 1
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_file: str = ""
    ssl_cert_file: str = ""
    ssl_key_file: str = ""

    def topic(self, logical: str) -> str:
        """The physical name of a catalogue topic (``SIGNALBOX_TOPIC_PREFIX`` + name)."""
        return f"{self.topic_prefix}{logical}"

    @property
    def evaluator_app_id(self) -> str:
        """The evaluator's Faust app id (its consumer group and table prefix)."""
        return self.topic("signalbox-evaluator")

    @property
    def dispatcher_group_id(self) -> str:
        """The dispatchers' consumer group (and transactional id prefix)."""
        return self.topic("signalbox-dispatcher")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")


_SASL_VARIABLES = ("KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")
_TLS_VARIABLES = ("KAFKA_SSL_CA_FILE", "KAFKA_SSL_CERT_FILE", "KAFKA_SSL_KEY_FILE")


def _kafka_settings(e: Env) -> KafkaSettings:
    protocol = e.choice("KAFKA_SECURITY_PROTOCOL", KafkaSettings.security_protocol,
                        SECURITY_PROTOCOLS)
    base = KafkaSettings(
        bootstrap_servers=e.text("KAFKA_BOOTSTRAP_SERVERS", KafkaSettings.bootstrap_servers),
        topic_prefix=e.text("SIGNALBOX_TOPIC_PREFIX", KafkaSettings.topic_prefix),
        partitions=e.integer("SIGNALBOX_PARTITIONS", KafkaSettings.partitions, minimum=1),
        replication_factor=e.integer("SIGNALBOX_REPLICATION_FACTOR",
                                     KafkaSettings.replication_factor, minimum=1),
        security_protocol=protocol,
    )
    sasl = _used_with(e, _SASL_VARIABLES, base.uses_sasl, protocol, "SASL_PLAINTEXT or SASL_SSL")
    tls = _used_with(e, _TLS_VARIABLES, base.uses_tls, protocol, "SSL or SASL_SSL")
    if base.uses_sasl:
        for name, value in sasl.items():
            if not value:
                raise SettingsError(f"{name}: required when KAFKA_SECURITY_PROTOCOL is {protocol}")
        sasl["KAFKA_SASL_MECHANISM"] = one_of("KAFKA_SASL_MECHANISM", sasl["KAFKA_SASL_MECHANISM"],
                                              SASL_MECHANISMS)
    if base.uses_tls:
        _check_tls_files(tls)
    return replace(
        base, sasl_mechanism=sasl["KAFKA_SASL_MECHANISM"],
        sasl_username=sasl["KAFKA_SASL_USERNAME"], sasl_password=sasl["KAFKA_SASL_PASSWORD"],
        ssl_ca_file=tls["KAFKA_SSL_CA_FILE"], ssl_cert_file=tls["KAFKA_SSL_CERT_FILE"],
        ssl_key_file=tls["KAFKA_SSL_KEY_FILE"])


def _used_with(e: Env, names: tuple[str, ...], used: bool, protocol: str,
               protocols: str) -> dict[str, str]:
    """The variables' values; an error if one is set for a protocol that does not use it."""
    values = {name: e.text(name, "") for name in names}
    for name, value in values.items():
        if value and not used:
            raise SettingsError(f"{name}: set, but KAFKA_SECURITY_PROTOCOL is {protocol}; "
                                f"it is used with {protocols} only")
    return values


def _check_tls_files(files: Mapping[str, str]) -> None:
    """Fail at start-up, naming the variable, on a file TLS could not use."""
    for name, path in files.items():
        try:
            if path:
                open(path, "rb").close()
        except OSError as exc:
            raise SettingsError(f"{name}: cannot read {path!r}: {exc.strerror}") from None
    ca, cert, key = (files[n] for n in _TLS_VARIABLES)
    if cert and not key:
        raise SettingsError("KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE "
                            "(mutual TLS needs both)")
    if key and not cert:
        raise SettingsError("KAFKA_SSL_CERT_FILE: required with KAFKA_SSL_KEY_FILE "
                            "(mutual TLS needs both)")
    try:
        context = ssl.create_default_context(cafile=ca or None)
    except ssl.SSLError as exc:
        raise SettingsError(f"KAFKA_SSL_CA_FILE: no PEM certificate in {ca!r}: {exc}") from None
    try:  # the password callback keeps OpenSSL from prompting for an encrypted key
        if cert:
            context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise SettingsError(
            f"KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: {cert!r} and {key!r} are not a PEM "
            f"certificate and its unencrypted private key: {exc}") from None


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "127.0.0.1"
    port: int = 2525
    username: str = ""
    password: str = field(default="", repr=False)
    tls: str = "none"  # none | starttls | implicit
    sender: str = "signalbox <noreply@signalbox.local>"
    timeout_s: float = 15.0
    ca_file: str = ""  # PEM CA bundle for the relay's certificate; empty: the system store


@dataclass(frozen=True)
class RegistrySettings:
    """A Confluent-compatible schema registry; no URL: single-object encoding, no registry."""

    url: str = ""
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"  # debug | info | warning | error
    format: str = "json"  # json | console


@dataclass(frozen=True)
class IngestSettings:
    port: int = 8080
    max_body_bytes: int = 1_048_576
    max_batch: int = 500
    auth: str = "keys"  # keys | none (development on loopback only)
    keys_file: str = ".run/ingest-keys.json"


@dataclass(frozen=True)
class EvaluatorSettings:
    port: int = 8081
    admin_port: int = 8084
    admin_token: str = field(default="", repr=False)
    store: str = "rocksdb://"  # or memory:// (state rebuilt from the changelog)
    data_dir: str = ".run/evaluator"
    #: Decoded states of the most recently active customers kept in memory.
    state_cache: int = 20_000
    automations_file: str = ""  # none: the built-in default automations
    teams: Mapping[str, str] = field(default_factory=lambda: {"finance": "finance@example.com"})


@dataclass(frozen=True)
class SchedulerSettings:
    port: int = 8083
    tick_interval_s: float = 60.0


@dataclass(frozen=True)
class DispatcherSettings:
    """What the dispatcher reads from the environment; its providers and policy are in the
    file ``config_file`` names (:mod:`signalbox.dispatcher.providers`)."""

    port: int = 8082
    #: Attempts and back-off of every channel unless the policy says otherwise.
    max_attempts: int = 5
    backoff_s: float = 0.5
    backoff_cap_s: float = 30.0
    public_url: str = ""  # where customers reach signalbox (unsubscribe links)
    unsubscribe_secret: str = field(default="", repr=False)  # signs unsubscribe links
    config_file: str = ""  # the providers file; none: every channel but email to the outbox
    smtp: SmtpSettings = SmtpSettings()


@dataclass(frozen=True)
class Settings:
    """Every service's settings, composed for the CLI: each module takes its section."""

    kafka: KafkaSettings = KafkaSettings()
    registry: RegistrySettings = RegistrySettings()
    logging: LoggingSettings = LoggingSettings()
    ingest: IngestSettings = IngestSettings()
    evaluator: EvaluatorSettings = EvaluatorSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    instance_id: str = "local"
    bind_host: str = "127.0.0.1"  # every service's HTTP servers
    #: The operator's templates: the dispatcher renders them, the evaluator checks
    #: automations against them.
    templates_dir: str = ""

    @classmethod
    def from_env(cls, environ: Env | Mapping[str, str] | None = None) -> Settings:
        """Every section from the environment (the process's by default): the one place
        each variable is read and given its default."""
        e = Env.of(environ)
        bind_host = e.text("SIGNALBOX_BIND_HOST", cls.bind_host)
        return cls(
            kafka=_kafka_settings(e),
            registry=RegistrySettings(
                url=e.text("SCHEMA_REGISTRY_URL", RegistrySettings.url),
                username=e.text("SCHEMA_REGISTRY_USERNAME", RegistrySettings.username),
                password=e.text("SCHEMA_REGISTRY_PASSWORD", RegistrySettings.password)),
            logging=LoggingSettings(
                level=e.choice("LOG_LEVEL", LoggingSettings.level,
                               ("debug", "info", "warning", "error")),
                format=e.choice("LOG_FORMAT", LoggingSettings.format, ("json", "console"))),
            ingest=_ingest_settings(e, bind_host),
            evaluator=_evaluator_settings(e),
            dispatcher=_dispatcher_settings(e),
            scheduler=SchedulerSettings(
                port=e.integer("SCHEDULER_PORT", SchedulerSettings.port, minimum=0),
                tick_interval_s=e.number("TICK_INTERVAL_SECONDS",
                                         SchedulerSettings.tick_interval_s, minimum=0.01)),
            instance_id=e.text("SIGNALBOX_INSTANCE_ID", socket.gethostname()),
            bind_host=bind_host,
            templates_dir=e.text("SIGNALBOX_TEMPLATES_DIR", cls.templates_dir),
        )


def _smtp_settings(e: Env) -> SmtpSettings:
    smtp = SmtpSettings(
        host=e.text("SMTP_HOST", SmtpSettings.host),
        port=e.integer("SMTP_PORT", SmtpSettings.port, minimum=1),
        username=e.text("SMTP_USERNAME", SmtpSettings.username),
        password=e.text("SMTP_PASSWORD", SmtpSettings.password),
        tls=e.choice("SMTP_TLS", SmtpSettings.tls, ("none", "starttls", "implicit")),
        sender=e.text("SMTP_FROM", SmtpSettings.sender),
        timeout_s=e.number("SMTP_TIMEOUT_SECONDS", SmtpSettings.timeout_s, minimum=0.1),
        ca_file=e.text("SMTP_TLS_CA_FILE", SmtpSettings.ca_file),
    )
    if smtp.ca_file and not os.path.isfile(smtp.ca_file):
        raise SettingsError(f"SMTP_TLS_CA_FILE: no such file: {smtp.ca_file!r}")
    return smtp


def _dispatcher_settings(e: Env) -> DispatcherSettings:
    d = DispatcherSettings
    return DispatcherSettings(
        port=e.integer("DISPATCHER_PORT", d.port, minimum=0),
        max_attempts=e.integer("DISPATCHER_MAX_ATTEMPTS", d.max_attempts, minimum=1),
        backoff_s=e.number("DISPATCHER_BACKOFF_SECONDS", d.backoff_s),
        backoff_cap_s=e.number("DISPATCHER_BACKOFF_CAP_SECONDS", d.backoff_cap_s),
        public_url=e.text("SIGNALBOX_PUBLIC_URL", d.public_url),
        unsubscribe_secret=e.text("SIGNALBOX_UNSUBSCRIBE_SECRET", d.unsubscribe_secret),
        config_file=e.text("SIGNALBOX_DISPATCHER_CONFIG", d.config_file),
        smtp=_smtp_settings(e),
    )


def is_loopback(host: str) -> bool:
    """Whether a bind address reaches this machine only (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _ingest_settings(e: Env, bind_host: str) -> IngestSettings:
    """``INGEST_AUTH=none`` lets anyone post events: refused unless ingest binds to loopback."""
    auth = e.choice("INGEST_AUTH", IngestSettings.auth, ("keys", "none"))
    if auth == "none" and not is_loopback(bind_host):
        raise SettingsError(
            f"INGEST_AUTH: 'none' (no API keys) is for development on loopback only, but "
            f"SIGNALBOX_BIND_HOST is {bind_host!r}; create keys with `signalbox keys create`")
    return IngestSettings(
        port=e.integer("INGEST_PORT", IngestSettings.port, minimum=0),
        max_body_bytes=e.integer("INGEST_MAX_BODY_BYTES", IngestSettings.max_body_bytes, 1),
        max_batch=e.integer("INGEST_MAX_BATCH", IngestSettings.max_batch, minimum=1),
        auth=auth, keys_file=e.text("INGEST_KEYS_FILE", IngestSettings.keys_file))


def _evaluator_settings(e: Env) -> EvaluatorSettings:
    d = EvaluatorSettings()  # an instance: the teams default is a factory
    return EvaluatorSettings(
        port=e.integer("EVALUATOR_PORT", d.port, minimum=0),
        admin_port=e.integer("EVALUATOR_ADMIN_PORT", d.admin_port, minimum=0),
        admin_token=e.text("SIGNALBOX_ADMIN_TOKEN", d.admin_token),
        store=e.choice("EVALUATOR_STORE", d.store, EVALUATOR_STORES),
        data_dir=str(Path(e.text("EVALUATOR_DATA_DIR", d.data_dir))),
        state_cache=e.integer("EVALUATOR_STATE_CACHE", d.state_cache, minimum=1),
        automations_file=e.text("SIGNALBOX_AUTOMATIONS_FILE", d.automations_file),
        teams=e.pairs("SIGNALBOX_TEAMS", ",".join(f"{k}={v}" for k, v in d.teams.items())),
    )


def require_admin_token(evaluator: EvaluatorSettings, bind_host: str) -> None:
    """The evaluator's admin API changes automations and decides approvals: beyond loopback
    it needs a token. Checked where the API is served (not in :meth:`Settings.from_env`), so
    the other services and the CLI do not need the admin secret."""
    if not evaluator.admin_token and not is_loopback(bind_host):
        raise SettingsError(
            f"SIGNALBOX_ADMIN_TOKEN: required, because SIGNALBOX_BIND_HOST is "
            f"{bind_host!r} (not loopback) and without a token anyone who reaches "
            f"the admin API could change automations and decide approvals; set a long random "
            f"token (e.g. `openssl rand -hex 32`)")
