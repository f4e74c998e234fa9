# Two entry points: `make demo` and `make test`. Each sets up the virtual environment itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: no Chromium found; PNG figures need one (HTML figures work without it)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m asymllic.cli.demo

# PostgreSQL for the scale-out tests: started on loopback by scripts/start_postgres.sh (skipped if it cannot)
test: setup
	ASYMLLIC_TEST_POSTGRES="$${ASYMLLIC_TEST_POSTGRES:-$$(bash scripts/start_postgres.sh 2>/dev/null | tail -n 1)}" $(PY) -m pytest

bench: setup
	$(PY) bench/decode_time.py
	$(PY) bench/latent_cache.py

clean:
	rm -rf $(VENV) results/*
