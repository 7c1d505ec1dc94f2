# Two commands do all set-up on a fresh machine:
#   make book   create .venv if missing, install, execute every chapter, write _build/html
#   make test   create .venv if missing, install, run the whole test suite (builds the book once)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.dyndl-installed
RUN    := PATH="$(CURDIR)/$(BIN):$$PATH"

.PHONY: book test lock clean student run-times bench

$(STAMP): requirements/lock.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/lock.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

book: $(STAMP)
	rm -rf _build/.jupyter_cache
	$(RUN) jupyter-book build . --all --warningiserror --keep-going
	@echo "Open _build/html/index.html"

test: $(STAMP)
	$(RUN) bash scripts/ensure_browser.sh
	$(RUN) python -m pytest

lock: $(STAMP)
	$(BIN)/python scripts/freeze_lock.py

student: $(STAMP)
	$(BIN)/python scripts/make_student_notebooks.py

run-times: $(STAMP)
	$(BIN)/python scripts/record_run_times.py

bench: $(STAMP)
	$(RUN) python bench/run_all.py

clean:
	rm -rf _build
