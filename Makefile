# `make run` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test bench fuzz lint-imports postgresql qt-system-libraries installer clean

# torch==2.13.0 goes first: pip then takes the local CPU wheel instead of
# resolving a newer build that drags in several GB of CUDA packages.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Starts the studio on its built-in sample model; with no display, the headless demo.
run: $(INSTALLED) qt-system-libraries
	$(BIN)/autoglm-studio

# Qt's X11 plugin needs system libraries pip cannot install (Debian/Ubuntu names).
QT_X11_PACKAGES := libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxkbcommon-x11-0
qt-system-libraries:
	@missing=; for lib in libxcb-cursor.so.0 libxcb-icccm.so.4 libxcb-keysyms.so.1 libxcb-image.so.0 \
		libxcb-render-util.so.0 libxkbcommon-x11.so.0; do ldconfig -p 2>/dev/null | grep -q $$lib || missing=yes; done; \
	if [ -n "$$DISPLAY" ] && [ -n "$$missing" ]; then \
		echo "installing the X11 libraries of the desktop window: $(QT_X11_PACKAGES)"; \
		$$(command -v sudo) apt-get install -y -q $(QT_X11_PACKAGES) >/dev/null 2>&1 || \
		echo "could not install them: the studio will say which are missing and run the headless demo"; \
	fi

# The Qt-free packages' tests run first with Qt unimportable (proof they are Qt-free), then the rest.
# The storage tests start a real PostgreSQL server (initdb + pg_ctl into a temp dir).
QT_FREE_TESTS := tests/core tests/engine tests/profilers tests/storage tests/studio/ui/test_state.py
test: $(INSTALLED) lint-imports postgresql
	QT_QPA_PLATFORM=offscreen $(BIN)/python tests/without_qt.py $(QT_FREE_TESTS)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(addprefix --ignore=,$(QT_FREE_TESTS))

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

# Coverage-guided fuzzing (atheris) of every reader of untrusted bytes, FUZZ_SECONDS each; findings (inputs and
# tracebacks) go to FUZZ_WORK/NAME/findings. `make test` replays fuzz/corpus and fuzz/crashers as regression tests.
FUZZ_SECONDS ?= 600
FUZZ_WORK ?= /tmp/autoglm-fuzz
FUZZ_HARNESSES := model_loader npz_reader recipe_parser bundle_manifest stored_samples
fuzz: $(INSTALLED)
	$(BIN)/python -m pip install --quiet 'atheris==3.0.0'
	@for name in $(FUZZ_HARNESSES); do \
		echo "== $$name ($(FUZZ_SECONDS) s)"; \
		$(BIN)/python fuzz/run.py $$name --seconds $(FUZZ_SECONDS) --work $(FUZZ_WORK) 2>&1 \
			| grep -E "^FINDING|DONE|number_of_executed_units|Timeout|deadly signal|out-of-memory"; \
	done

# A one-folder desktop build, smoke-tested (--version, demo); a few minutes, so CI runs it only with CI_INSTALLER=1.
installer: $(INSTALLED)
	$(BIN)/python -m pip install --quiet -e '.[installer]'
	$(BIN)/python installer/build.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .import_linter_cache
