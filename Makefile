# Two commands do all set-up on a fresh machine:
#   make book   create .venv if missing, install, execute every chapter, write _build/html
#   make test   create .venv if missing, install, run the whole test suite (builds the book once)
PYTHON ?= python3
VENV   ?= .venv
# the pins installed: requirements/lock-cpu.txt installs torch's CPU wheels (the GitHub workflow's).
# The lock is complete, so it is installed --no-deps: it leaves out dependencies that nothing here
# imports (scripts/freeze_lock.py, UNUSED).
LOCK   ?= requirements/lock.txt
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dyndl-installed
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: book book-full test test-fast pdf lock clean student run-times bench reproduce reproduce-status \
	evaluate

$(STAMP): $(LOCK) pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

book: $(STAMP)
	rm -rf _build/.jupyter_cache
	$(RUN) jupyter-book build . --all --warningiserror --keep-going
	@echo "Open _build/html/index.html"

# One pytest-xdist worker per core (TEST_WORKERS=0: one process); the book builds once, in the
# background, while the workers run the tests that do not need it (tests/conftest.py).
TEST_WORKERS ?= auto
test: $(STAMP)
	$(RUN) bash scripts/ensure_browser.sh
	$(RUN) python -m pytest -n $(TEST_WORKERS)

# Every chapter executed in full mode (the papers' protocols on the shipped checkpoints) on this
# machine, its time per chapter in _build/full/execution_times.json for `make run-times`. Not part
# of `make test`; expect a long run on a CPU.
book-full: $(STAMP)
	DYNDL_MODE=full $(RUN) python scripts/run_notebook.py --all --out _build/full \
		--times _build/full/execution_times.json

# Contributors' quick check (under a minute): the unit tests, without the
# book build, the notebooks' execution or the browser.
test-fast: $(STAMP)
	$(RUN) python -m pytest -m "not book and not browser and not slow" -q

# The whole book as one PDF (headless Chromium prints the built pages as one),
# beside the executed and student notebook archives in _build/html/downloads/.
pdf: $(STAMP)
	test -f _build/html/index.html || $(MAKE) book
	$(RUN) bash scripts/ensure_browser.sh
	$(RUN) python scripts/make_downloads.py --pdf

lock: $(STAMP)
	$(BIN)/python scripts/freeze_lock.py

student: $(STAMP)
	$(BIN)/python scripts/make_student_notebooks.py

# Time every chapter in quick mode on this machine (keep it otherwise idle: the times go into the
# chapters' "Running time" cells) with the one timer, bench/notebooks.py, and write them into the
# notebooks and the Performance page.
run-times: $(STAMP)
	DYNDL_MODE=quick $(RUN) python -m bench.notebooks --times _build/execution_times.json
	$(BIN)/python scripts/record_run_times.py
	$(BIN)/python scripts/render_performance.py

bench: $(STAMP)
	$(RUN) python -m bench.run_all

clean:
	rm -rf _build

# The reproduction campaign (maintainers): walk dyndl_lite/plans/$(PLAN).toml, training into reproduction/
# (partial runs are committed there so that the next sitting resumes them) and shipping each finished run
# into the package. PLAN=book (the book's compressed runs, done) or PLAN=paper (the papers' full recipes).
# Pass e.g. REPRODUCE_ARGS="--budget-minutes 120 --threads 1"; Ctrl-C loses at most one epoch.
PLAN ?= book
reproduce: $(STAMP)
	$(RUN) python -m dyndl_lite reproduce --plan dyndl_lite/plans/$(PLAN).toml --out reproduction \
		--ship $(REPRODUCE_ARGS)

reproduce-status: $(STAMP)
	$(RUN) python -m dyndl_lite reproduce --plan dyndl_lite/plans/$(PLAN).toml --out reproduction \
		--status

# Evaluation records (maintainers): measure every shipped checkpoint whose record
# dyndl_lite/checkpoints/<name>.eval.json is missing, stale (other weights, older protocol) or
# invalid, under the papers' full protocols on official MNIST test; current records are kept.
# Pass e.g. EVALUATE_ARGS="--threads 2" or "--device cuda". One checkpoint:
# python -m dyndl_lite evaluate NAME [--force].
evaluate: $(STAMP)
	$(RUN) python -m dyndl_lite evaluate --all-stale $(EVALUATE_ARGS)
