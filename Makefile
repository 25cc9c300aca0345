# `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test bench lint-imports postgresql installer clean

# torch==2.13.0 goes first: pip then takes the local CPU wheel instead of
# resolving a newer build that drags in several GB of CUDA packages.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Starts the studio on its built-in sample model; with no display, the headless demo.
run: $(INSTALLED)
	$(BIN)/autoglm-studio

# The storage tests start a real PostgreSQL server (initdb + pg_ctl into a temp dir).
test: $(INSTALLED) lint-imports postgresql
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || \
		{ echo "installing Debian's postgresql for the storage tests"; \
		  $$(command -v sudo) apt-get install -y -q postgresql >/dev/null || \
		  { $$(command -v sudo) apt-get update -q && $$(command -v sudo) apt-get install -y -q postgresql; }; }

lint-imports: $(INSTALLED)
	$(BIN)/lint-imports

bench: $(INSTALLED)
	@for script in benchmarks/*.py; do \
		echo "== $$script"; \
		$(BIN)/python $$script || exit 1; \
	done

# A one-folder desktop build, smoke-tested (--version, demo); a few minutes, so CI runs it only with CI_INSTALLER=1.
installer: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[installer]'
	$(BIN)/python installer/build.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .import_linter_cache
