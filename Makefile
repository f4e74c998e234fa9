# Two entry points: `make demo` and `make test`. Each sets up the virtual environment itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench wheels clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: no Chromium found; PNG figures need one (HTML figures work without it)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: setup
	$(PY) -m asymllic_cli.demo

# PostgreSQL for the scale-out tests: started on loopback by scripts/start_postgres.sh (skipped if it cannot)
test: setup
	ASYMLLIC_TEST_POSTGRES="$${ASYMLLIC_TEST_POSTGRES:-$$(bash scripts/start_postgres.sh 2>/dev/null | tail -n 1)}" $(PY) -m pytest

bench: setup
	$(PY) bench/decode_time.py
	$(PY) bench/latent_cache.py
	$(PY) bench/scale.py

# What scripts/gpu_check.sh installs on a GPU machine without network (CPython 3.12, x86-64; the packages of
# scripts/device_packages.txt already there): binary wheels only, nothing is built there. CompressAI 1.2.8's
# cp312 wheel is manylinux_2_34 (pip also takes the older manylinux tags below it); tomli is one of its declared
# requirements. Into .whl/ (git ignores it; about 2 MiB), then checked by scripts/check_wheels.py (requirements,
# imports, size of what travels).
WHEELS := optuna==5.0.0 alembic==1.20.1 sqlalchemy==2.1.9 mako==1.4.3 colorlog==6.12.0 \
	thop==0.1.1.post2209072238 pytorch-msssim==1.0.0 bjontegaard==1.3.0 compressai==1.2.8 tomli==2.5.0
WHEEL_PLATFORMS := manylinux_2_34_x86_64 manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
wheels: setup
	rm -rf .whl
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(addprefix --platform ,$(WHEEL_PLATFORMS)) -d .whl $(WHEELS)
	$(PY) scripts/check_wheels.py

clean:
	rm -rf $(VENV) results/*
