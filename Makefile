# Two entry points: `make demo` and `make test`. Each sets up the virtual environment itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup lock demo test bench wheels clean

setup: $(STAMP)

# constraints.txt, the lock: the exact version of every package the set-up installs (pyproject.toml keeps ranges)
LOCK := constraints.txt

$(STAMP): pyproject.toml $(LOCK)
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "note: no Chromium found; PNG figures need one (HTML figures work without it)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(LOCK) -e '.[test]'
	touch $(STAMP)

# After a deliberate upgrade: resolve pyproject.toml's ranges afresh in a temporary virtual environment (without
# the setuptools an older venv brings along, so that only what the project needs is pinned) and pin what it
# installed (the lock's leading comment kept); then run the tests.
lock:
	tmp="$$(mktemp -d)" && trap 'rm -rf "$$tmp"' EXIT && \
	$(PYTHON) -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip uninstall -q -y setuptools 2>/dev/null; \
	"$$tmp/venv/bin/python" -m pip install -q -e '.[test]' && \
	{ sed -n '/^#/!q;p' $(LOCK) 2>/dev/null; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable --exclude pip; } > "$$tmp/lock" && \
	mv "$$tmp/lock" $(LOCK)

demo: setup
	$(PY) -m asymllic_cli.demo

# PostgreSQL for the scale-out tests: started on loopback by scripts/start_postgres.sh (skipped if it cannot)
test: setup
	ASYMLLIC_TEST_POSTGRES="$${ASYMLLIC_TEST_POSTGRES:-$$(bash scripts/start_postgres.sh 2>/dev/null | tail -n 1)}" $(PY) -m pytest

bench: setup
	$(PY) bench/decode_time.py
	$(PY) bench/latent_cache.py
	$(PY) bench/scale.py

# The wheels scripts/gpu_check.sh installs on a GPU machine without network (bash scripts/gpu_check.sh there):
#   make wheels TARGET=freeze.txt [PYTHON_VERSION=3.12] [PLATFORM='manylinux_2_34_x86_64 ...']
# TARGET is `pip freeze` run on that machine, PYTHON_VERSION its Python, PLATFORM its platform tag(s) (a
# manylinux_2_N tag, N its glibc minor version from `ldd --version`, also takes the older tags). What the GPU
# check needs and TARGET lacks (scripts/check_wheels.py's GPU_PACKAGES, at the lock's versions) is downloaded as
# binary wheels only, nothing is built there, into .whl/ (git ignores it), then checked by scripts/check_wheels.py
# (requirements met, imports, sizes).
# (set on the command line only: `:=` ignores environment variables of the same names, such as PYTHON_VERSION)
TARGET :=
PYTHON_VERSION := 3.12
PLATFORM := manylinux_2_34_x86_64
CHECK_WHEELS = $(PY) scripts/check_wheels.py --target '$(TARGET)' --python-version $(PYTHON_VERSION) \
	$(addprefix --platform ,$(PLATFORM))
wheels: setup
	@test -n '$(TARGET)' || { echo "make wheels: name the GPU machine's pip freeze output: make wheels" \
		"TARGET=freeze.txt [PYTHON_VERSION=3.12] [PLATFORM=manylinux_2_34_x86_64]" >&2; exit 2; }
	rm -rf .whl && mkdir .whl
	need="$$($(CHECK_WHEELS) --print needed)" && platforms="$$($(CHECK_WHEELS) --print platforms)" && \
	if [ -n "$$need" ]; then $(PY) -m pip download -q --no-deps --only-binary=:all: \
		--python-version $(PYTHON_VERSION) --implementation cp $$(printf -- '--platform %s ' $$platforms) \
		-d .whl $$need; fi
	$(CHECK_WHEELS)

clean:
	rm -rf $(VENV) results/*
