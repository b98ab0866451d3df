"""The project's test broker: tools/kafka/kafka.sh on 19092, with its own data dir.

It always has the SASL_PLAINTEXT listener too (PLAIN and SCRAM-SHA-256, one user),
so whoever starts it (the test session or a benchmark) starts the same broker. It runs
from a checkout (an editable install): ``REPO`` is the checkout's root.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
TEST_KAFKA_PORT = os.environ.get("SIGNALBOX_TEST_KAFKA_PORT", "19092")
TEST_KAFKA_SASL_PORT = os.environ.get("SIGNALBOX_TEST_KAFKA_SASL_PORT", "19094")
TEST_KAFKA_HOME = REPO / ".run" / "kafka-test"
#: The one user of the SASL listener.
SASL_USER, SASL_PASSWORD = "signalbox", "signalbox-test-secret"


def kafka_script(command: str) -> subprocess.CompletedProcess[str]:
    """``tools/kafka/kafka.sh <command>`` for the test broker (start, stop, status)."""
    env = {**os.environ, "KAFKA_PORT": TEST_KAFKA_PORT, "KAFKA_SASL_PORT": TEST_KAFKA_SASL_PORT,
           "KAFKA_SASL_USER": SASL_USER, "KAFKA_SASL_USER_PASSWORD": SASL_PASSWORD,
           "KAFKA_HOME_DIR": str(TEST_KAFKA_HOME)}
    return subprocess.run([str(REPO / "tools" / "kafka" / "kafka.sh"), command], env=env,
                          text=True, capture_output=True, check=False)
