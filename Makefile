# One virtual environment in .venv, made from pyproject.toml on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup test test-fast demo bench lint kafka clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

## Everything, real-Kafka tests included (Java and Maven give a real broker).
test: setup
	$(PY) -m pytest

## Unit tests only: no broker, no network.
test-fast: setup
	$(PY) -m pytest -m "not kafka and not apache_kafka and not network"

## Embedded broker + MovieLens-100K replayed live + the service; ends with a summary.
demo: setup
	$(VENV)/bin/streamrec demo

bench: setup
	$(PY) bench/e2e_throughput.py

lint: setup
	$(VENV)/bin/ruff check stream consumers tests bench

## A real Apache Kafka broker on a free loopback port, until Ctrl-C.
kafka: setup
	$(PY) -m consumers.brokers apache

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
