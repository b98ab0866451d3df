"""Settings from the environment: working defaults, every variable, clear errors."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from signalbox.common.settings import (
    DispatcherSettings,
    EvaluatorSettings,
    IngestSettings,
    KafkaSettings,
    LoggingSettings,
    RegistrySettings,
    SchedulerSettings,
    Settings,
    SettingsError,
    SmtpSettings,
    require_admin_token,
)
from tests.common.conftest import TlsFiles

#: A value other than the default for every variable signalbox reads (and the
#: TLS files of the ``every_variable`` fixture).
EVERY_VARIABLE = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "signalbox",
    "KAFKA_SASL_PASSWORD": "kafka-s3cret",
    "SIGNALBOX_TOPIC_PREFIX": "acme.",
    "SIGNALBOX_PARTITIONS": "12",
    "SIGNALBOX_REPLICATION_FACTOR": "3",
    "SCHEMA_REGISTRY_URL": "https://registry.example.com/apis/ccompat/v7",
    "SCHEMA_REGISTRY_USERNAME": "signalbox",
    "SCHEMA_REGISTRY_PASSWORD": "s3cret",
    "SMTP_HOST": "smtp.example.com",
    "SMTP_PORT": "465",
    "SMTP_USERNAME": "mailer",
    "SMTP_PASSWORD": "hunter2",
    "SMTP_TLS": "implicit",
    "SMTP_FROM": "Acme Billing <billing@acme.example>",
    "SMTP_TIMEOUT_SECONDS": "2.5",
    "LOG_LEVEL": "debug",
    "LOG_FORMAT": "console",
    "SIGNALBOX_INSTANCE_ID": "worker-7",
    "SIGNALBOX_BIND_HOST": "127.0.0.2",  # loopback: INGEST_AUTH=none is allowed there only
    "INGEST_PORT": "9080",
    "INGEST_MAX_BODY_BYTES": "2048",
    "INGEST_MAX_BATCH": "50",
    "INGEST_AUTH": "none",
    "INGEST_KEYS_FILE": "/etc/signalbox/ingest-keys.json",
    "EVALUATOR_PORT": "9081",
    "EVALUATOR_ADMIN_PORT": "9084",
    "SIGNALBOX_ADMIN_TOKEN": "admin-s3cret",
    "EVALUATOR_STORE": "memory://",
    "EVALUATOR_DATA_DIR": "/var/lib/signalbox/evaluator/",
    "EVALUATOR_STATE_CACHE": "5000",
    "SIGNALBOX_AUTOMATIONS_FILE": "/etc/signalbox/automations.yaml",
    "SIGNALBOX_TEAMS": "finance=ar@acme.example, support = help@acme.example",
    "DISPATCHER_PORT": "9082",
    "DISPATCHER_MAX_ATTEMPTS": "9",
    "DISPATCHER_BACKOFF_SECONDS": "0",
    "DISPATCHER_BACKOFF_CAP_SECONDS": "120",
    "SIGNALBOX_TEMPLATES_DIR": "/etc/signalbox/templates",
    "SIGNALBOX_PUBLIC_URL": "https://signalbox.acme.example",
    "SIGNALBOX_UNSUBSCRIBE_SECRET": "unsubscribe-s3cret",
    "SIGNALBOX_DISPATCHER_CONFIG": "/etc/signalbox/dispatcher.yaml",
    "SCHEDULER_PORT": "9083",
    "TICK_INTERVAL_SECONDS": "0.25",
}


@pytest.fixture
def every_variable(tls_files: TlsFiles) -> dict[str, str]:
    return {**EVERY_VARIABLE, "KAFKA_SSL_CA_FILE": tls_files.cert,
            "KAFKA_SSL_CERT_FILE": tls_files.cert, "KAFKA_SSL_KEY_FILE": tls_files.key,
            "SMTP_TLS_CA_FILE": tls_files.cert}


def test_defaults_from_an_empty_environment_work_on_a_fresh_machine() -> None:
    assert Settings.from_env({}) == Settings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9092", topic_prefix="", partitions=4,
                            replication_factor=1),
        logging=LoggingSettings(level="info", format="json"), instance_id=socket.gethostname(),
        bind_host="127.0.0.1",
        ingest=IngestSettings(port=8080, max_body_bytes=1_048_576, max_batch=500, auth="keys",
                              keys_file=".run/ingest-keys.json"),
        evaluator=EvaluatorSettings(port=8081, store="rocksdb://", data_dir=".run/evaluator",
                                    automations_file="",
                                    teams={"finance": "finance@example.com"}),
        dispatcher=DispatcherSettings(
            port=8082, max_attempts=5, backoff_s=0.5, backoff_cap_s=30.0, config_file="",
            smtp=SmtpSettings(host="127.0.0.1", port=2525, username="", password="", tls="none",
                              sender="signalbox <noreply@signalbox.local>", timeout_s=15.0)),
        templates_dir="", scheduler=SchedulerSettings(port=8083, tick_interval_s=60.0),
    )


def test_every_variable_is_read(every_variable: dict[str, str], tls_files: TlsFiles) -> None:
    assert Settings.from_env(every_variable) == Settings(
        kafka=KafkaSettings(bootstrap_servers="kafka-1:9092,kafka-2:9092", topic_prefix="acme.",
                            partitions=12, replication_factor=3, security_protocol="SASL_SSL",
                            sasl_mechanism="SCRAM-SHA-512", sasl_username="signalbox",
                            sasl_password="kafka-s3cret", ssl_ca_file=tls_files.cert,
                            ssl_cert_file=tls_files.cert, ssl_key_file=tls_files.key),
        registry=RegistrySettings(url="https://registry.example.com/apis/ccompat/v7",
                                  username="signalbox", password="s3cret"),
        logging=LoggingSettings(level="debug", format="console"), instance_id="worker-7",
        bind_host="127.0.0.2",
        ingest=IngestSettings(port=9080, max_body_bytes=2048, max_batch=50, auth="none",
                              keys_file="/etc/signalbox/ingest-keys.json"),
        evaluator=EvaluatorSettings(
            port=9081, admin_port=9084, admin_token="admin-s3cret", store="memory://",
            data_dir="/var/lib/signalbox/evaluator", state_cache=5000,
            automations_file="/etc/signalbox/automations.yaml",
            teams={"finance": "ar@acme.example", "support": "help@acme.example"}),
        dispatcher=DispatcherSettings(
            port=9082, max_attempts=9, backoff_s=0.0, backoff_cap_s=120.0,
            public_url="https://signalbox.acme.example", unsubscribe_secret="unsubscribe-s3cret",
            config_file="/etc/signalbox/dispatcher.yaml",
            smtp=SmtpSettings(host="smtp.example.com", port=465, username="mailer",
                              password="hunter2", tls="implicit",
                              sender="Acme Billing <billing@acme.example>", timeout_s=2.5,
                              ca_file=tls_files.cert)),
        templates_dir="/etc/signalbox/templates",
        scheduler=SchedulerSettings(port=9083, tick_interval_s=0.25),
    )


def test_no_setting_is_left_at_its_default_by_every_variable(
        every_variable: dict[str, str]) -> None:
    """Catches a field whose variable is not read (or not listed in EVERY_VARIABLE)."""
    def same(given: object, default: object) -> list[str]:
        """Fields of ``given`` (and of its sections) equal to the default's."""
        found = []
        for f in dataclasses.fields(given):  # type: ignore[arg-type]
            mine, theirs = getattr(given, f.name), getattr(default, f.name)
            if dataclasses.is_dataclass(mine):
                found += [f"{f.name}.{name}" for name in same(mine, theirs)]
            elif mine == theirs:
                found.append(f.name)
        return found

    assert same(Settings.from_env(every_variable), Settings.from_env({})) == [], \
        "not read from the environment"


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIGNALBOX_PARTITIONS", "7")
    monkeypatch.setenv("SIGNALBOX_TOPIC_PREFIX", "env.")
    settings = Settings.from_env()
    assert (settings.kafka.partitions, settings.kafka.topic_prefix) == (7, "env.")


def test_blank_values_mean_the_default_and_values_are_trimmed() -> None:
    settings = Settings.from_env({"SIGNALBOX_PARTITIONS": "  ", "SMTP_HOST": "",
                                  "TICK_INTERVAL_SECONDS": " 2 ", "LOG_FORMAT": " Console ",
                                  "SMTP_TLS": "STARTTLS", "SIGNALBOX_TEAMS": " , ops=o@x ,"})
    assert settings.kafka.partitions == 4
    assert settings.dispatcher.smtp.host == "127.0.0.1"
    assert settings.scheduler.tick_interval_s == 2.0
    assert (settings.logging.format, settings.dispatcher.smtp.tls) == ("console", "starttls")
    assert settings.evaluator.teams == {"ops": "o@x"}


def test_a_team_address_may_contain_equals_signs() -> None:
    assert Settings.from_env({"SIGNALBOX_TEAMS": "ops=a=b@x"}).evaluator.teams == {"ops": "a=b@x"}


@pytest.mark.parametrize(("variable", "value", "message"), [
    ("SIGNALBOX_PARTITIONS", "four", "SIGNALBOX_PARTITIONS: expected an integer, got 'four'"),
    ("SIGNALBOX_PARTITIONS", "0", "SIGNALBOX_PARTITIONS: must be at least 1, got 0"),
    ("SIGNALBOX_REPLICATION_FACTOR", "1.0",
     "SIGNALBOX_REPLICATION_FACTOR: expected an integer, got '1.0'"),
    ("SMTP_PORT", "25a", "SMTP_PORT: expected an integer, got '25a'"),
    ("INGEST_PORT", "-1", "INGEST_PORT: must be at least 0, got -1"),
    ("INGEST_MAX_BODY_BYTES", "0", "INGEST_MAX_BODY_BYTES: must be at least 1, got 0"),
    ("DISPATCHER_MAX_ATTEMPTS", "0", "DISPATCHER_MAX_ATTEMPTS: must be at least 1, got 0"),
    ("SMTP_TIMEOUT_SECONDS", "soon", "SMTP_TIMEOUT_SECONDS: expected a number, got 'soon'"),
    ("SMTP_TIMEOUT_SECONDS", "0", "SMTP_TIMEOUT_SECONDS: must be at least 0.1, got 0.0"),
    ("SMTP_TLS_CA_FILE", "/nonexistent.pem", "SMTP_TLS_CA_FILE: no such file: '/nonexistent.pem'"),
    ("DISPATCHER_BACKOFF_SECONDS", "-0.5",
     "DISPATCHER_BACKOFF_SECONDS: must be at least 0.0, got -0.5"),
    ("TICK_INTERVAL_SECONDS", "1m", "TICK_INTERVAL_SECONDS: expected a number, got '1m'"),
    ("TICK_INTERVAL_SECONDS", "0.001", "TICK_INTERVAL_SECONDS: must be at least 0.01, got 0.001"),
    ("SMTP_TLS", "ssl", "SMTP_TLS: expected one of none, starttls, implicit, got 'ssl'"),
    ("LOG_LEVEL", "verbose",
     "LOG_LEVEL: expected one of debug, info, warning, error, got 'verbose'"),
    ("LOG_FORMAT", "xml", "LOG_FORMAT: expected one of json, console, got 'xml'"),
    ("EVALUATOR_STORE", "rocksdb:", "EVALUATOR_STORE: expected one of memory://, rocksdb://, "
     "got 'rocksdb:'"),
    ("KAFKA_SECURITY_PROTOCOL", "TLS", "KAFKA_SECURITY_PROTOCOL: expected one of PLAINTEXT, "
     "SSL, SASL_PLAINTEXT, SASL_SSL, got 'TLS'"),
    ("SIGNALBOX_TEAMS", "finance", "SIGNALBOX_TEAMS: expected name=value pairs, got 'finance'"),
    ("SIGNALBOX_TEAMS", "a=x,=y", "SIGNALBOX_TEAMS: expected name=value pairs, got '=y'"),
    ("SIGNALBOX_TEAMS", "a= ", "SIGNALBOX_TEAMS: expected name=value pairs, got 'a='"),
])
def test_a_bad_value_fails_naming_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({variable: value})
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    for obj, field in ((settings.logging, "level"), (settings, "kafka"),
                       (settings.kafka, "partitions"), (settings.dispatcher.smtp, "password")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, field, None)


def test_the_passwords_stay_out_of_the_repr(every_variable: dict[str, str]) -> None:
    settings = Settings.from_env(every_variable)
    assert (settings.dispatcher.smtp.password, settings.kafka.sasl_password) == (
        "hunter2", "kafka-s3cret")
    for secret in ("hunter2", "kafka-s3cret", "s3cret", "admin-s3cret", "unsubscribe-s3cret"):
        assert secret not in repr(settings)


def test_kafka_security_values_are_case_insensitive_and_only_what_the_protocol_uses() -> None:
    sasl = {"KAFKA_SASL_MECHANISM": "scram-sha-256", "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "p"}
    k = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": " sasl_plaintext ", **sasl}).kafka
    assert (k.security_protocol, k.sasl_mechanism, k.uses_sasl, k.uses_tls) == \
        ("SASL_PLAINTEXT", "SCRAM-SHA-256", True, False)
    k = Settings.from_env({"KAFKA_SECURITY_PROTOCOL": "ssl"}).kafka
    assert (k.security_protocol, k.uses_sasl, k.uses_tls, k.ssl_ca_file) == \
        ("SSL", False, True, "")
    assert Settings.from_env({"KAFKA_SECURITY_PROTOCOL": ""}).kafka == KafkaSettings()


SASL_OK = {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
           "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"}


@pytest.mark.parametrize(("env", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
     "KAFKA_SASL_MECHANISM: required when KAFKA_SECURITY_PROTOCOL is SASL_SSL"),
    ({**SASL_OK, "KAFKA_SASL_USERNAME": ""},
     "KAFKA_SASL_USERNAME: required when KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT"),
    ({**SASL_OK, "KAFKA_SASL_PASSWORD": " "},
     "KAFKA_SASL_PASSWORD: required when KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT"),
    ({**SASL_OK, "KAFKA_SASL_MECHANISM": "GSSAPI"},
     "KAFKA_SASL_MECHANISM: expected one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, "
     "got 'GSSAPI'"),
    ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p"},
     "KAFKA_SASL_USERNAME: set, but KAFKA_SECURITY_PROTOCOL is PLAINTEXT; it is used with "
     "SASL_PLAINTEXT or SASL_SSL only"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_MECHANISM": "PLAIN"},
     "KAFKA_SASL_MECHANISM: set, but KAFKA_SECURITY_PROTOCOL is SSL; it is used with "
     "SASL_PLAINTEXT or SASL_SSL only"),
    ({**SASL_OK, "KAFKA_SSL_CA_FILE": "{cert}"},
     "KAFKA_SSL_CA_FILE: set, but KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT; it is used with "
     "SSL or SASL_SSL only"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "{cert}"},
     "KAFKA_SSL_KEY_FILE: required with KAFKA_SSL_CERT_FILE (mutual TLS needs both)"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_FILE": "{key}"},
     "KAFKA_SSL_CERT_FILE: required with KAFKA_SSL_KEY_FILE (mutual TLS needs both)"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
     "KAFKA_SSL_CA_FILE: cannot read '/nonexistent/ca.pem': No such file or directory"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "{cert}",
      "KAFKA_SSL_KEY_FILE": "/"}, "KAFKA_SSL_KEY_FILE: cannot read '/': Is a directory"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "{not_pem}"},
     "KAFKA_SSL_CA_FILE: no PEM certificate in '{not_pem}': "),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "{cert}",
      "KAFKA_SSL_KEY_FILE": "{encrypted_key}"},
     "KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: '{cert}' and '{encrypted_key}' are not a PEM "
     "certificate and its unencrypted private key: "),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "{key}",
      "KAFKA_SSL_KEY_FILE": "{key}"},
     "KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE: '{key}' and '{key}' are not a PEM "
     "certificate and its unencrypted private key: "),
])
def test_a_bad_kafka_security_setting_fails_naming_the_variable(
        env: dict[str, str], message: str, tls_files: TlsFiles) -> None:
    """A message ending in ": " continues with OpenSSL's own reason."""
    files = dataclasses.asdict(tls_files)
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value.format(**files) for name, value in env.items()})
    expected = message.format(**files)
    if expected.endswith(": "):
        assert str(err.value).startswith(expected) and len(str(err.value)) > len(expected)
    else:
        assert str(err.value) == expected


def test_topic_applies_the_prefix() -> None:
    assert KafkaSettings().topic("ticks") == "ticks"
    assert KafkaSettings(topic_prefix="acme.").topic("events.billing") == "acme.events.billing"
    settings = Settings.from_env({"SIGNALBOX_TOPIC_PREFIX": "acme."})
    assert settings.kafka.evaluator_app_id == "acme.signalbox-evaluator"
    assert settings.kafka.dispatcher_group_id == "acme.signalbox-dispatcher"


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "evaluator.internal"])
def test_the_admin_api_beyond_loopback_is_refused_without_a_token(host: str) -> None:
    settings = Settings.from_env({"SIGNALBOX_BIND_HOST": host})  # other services start
    with pytest.raises(SettingsError) as err:
        require_admin_token(settings.evaluator, settings.bind_host)
    assert str(err.value).startswith(
        f"SIGNALBOX_ADMIN_TOKEN: required, because SIGNALBOX_BIND_HOST is {host!r} "
        "(not loopback)")


@pytest.mark.parametrize(("host", "token"), [
    ("127.0.0.1", ""), ("::1", ""), ("localhost", ""), ("0.0.0.0", "a-long-random-token")])
def test_the_admin_api_starts_on_loopback_or_with_a_token(host: str, token: str) -> None:
    settings = Settings.from_env({"SIGNALBOX_BIND_HOST": host, "SIGNALBOX_ADMIN_TOKEN": token})
    require_admin_token(settings.evaluator, settings.bind_host)
    assert settings.evaluator.admin_token == token


def test_no_module_is_called_config() -> None:
    """Settings are sections of signalbox.common.settings; the dispatcher's files are read by
    providers.py and policy/rules.py: a module named config.py would say none of that."""
    services = Path(__file__).resolve().parents[2] / "services"
    assert sorted(str(p.relative_to(services)) for p in services.rglob("config.py")) == []
