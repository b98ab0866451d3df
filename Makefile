# signalbox — the two commands operators need are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install run stop test lint typecheck unit bench kafka-start kafka-stop kafka-status topics k8s-rules clean

help:
	@echo "make run     broker + SMTP capture + the four services, then a sample event"
	@echo "make test    lint, type check and the whole test suite (starts its own broker)"
	@echo "make stop    stop what make run started, and the broker"
	@echo "make bench   benchmarks (print their figures)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	tools/run.sh

stop:
	tools/stop.sh

kafka-start:
	tools/kafka/kafka.sh start

kafka-stop:
	tools/kafka/kafka.sh stop

kafka-status:
	tools/kafka/kafka.sh status

topics: $(STAMP)
	$(BIN)/signalbox topics apply

# The Prometheus Operator's PrometheusRule, from deploy/prometheus/rules (tests check it).
k8s-rules: $(STAMP)
	$(BIN)/python tools/k8s/prometheusrule.py

lint: $(STAMP)
	$(BIN)/ruff check services tests bench setup.py tools/typecheck.py
	$(MAKE) --no-print-directory typecheck

# Strict mypy over the package by its import name `signalbox` (the code lives in services/)
# and over tests/ and bench/ in the same build: tools/typecheck.py names each package file
# through pyproject's package-dir mapping, and tests/bench files by their paths.
typecheck: $(STAMP)
	$(BIN)/python tools/typecheck.py

# No broker, no registry, no JVM: the markers follow fixture use (tests/conftest.py).
unit: $(STAMP)
	$(BIN)/pytest -m "not kafka and not registry" -q -n 2 --dist loadfile

test: $(STAMP) lint
	tools/kafka/kafka.sh install
	tools/registry/registry.sh install
	tools/prometheus/prometheus.sh install
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.processor
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.channels
	$(BIN)/python -m bench.evaluator
	$(BIN)/python -m bench.latency

clean:
	rm -rf .build .pytest_cache .mypy_cache .ruff_cache
