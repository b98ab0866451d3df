"""TLS files for the settings and client-option tests, made with the openssl command."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class TlsFiles:
    cert: str  # self-signed for 127.0.0.1 and localhost: serves as the CA file too
    key: str
    encrypted_key: str  # the same key, encrypted with a passphrase
    not_pem: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    d = tmp_path_factory.mktemp("tls")
    cert, key, encrypted = d / "cert.pem", d / "key.pem", d / "encrypted-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=signalbox-test",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", key, "-aes256", "-passout", "pass:secret",
                    "-out", encrypted], check=True, capture_output=True)
    not_pem = d / "not.pem"
    not_pem.write_text("this is not a certificate\n")
    return TlsFiles(str(cert), str(key), str(encrypted), str(not_pem))
