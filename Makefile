# The course's commands. Each target sets up what it needs (.venv with the
# pinned versions of constraints.txt and aigc_utils in editable mode).
#   make book   build the website (committed outputs, warnings are errors)
#   make test   everything CI runs: unit tests, notebooks re-executed under
#               nbval, notebook integrity and freshness, the book, the browser test
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := $(shell find notebooks -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' | sort)
NB ?= $(NOTEBOOKS)
GRADES ?= grades.csv
PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

# Offline machines keep the data next to the project; readers download it.
ifneq ($(wildcard ../shared/data),)
export AIGC_DATA_DIR ?= $(abspath ../shared/data)
endif
export PYTHONHASHSEED := 0

.PHONY: help setup book test check unit notebooks integrity browser execute timings lab lint clean distclean long-runs student seeds grade colab

help:
	@echo "make book     build the website into _build/html"
	@echo "make test     run every test (what CI runs)"
	@echo "make check    quick tier: unit tests, notebook integrity, book, browser test"
	@echo "make execute NB=notebooks/.../x.ipynb   re-execute notebooks in place"
	@echo "make seeds NB=notebooks/.../x.ipynb   re-run a chapter under two more seeds; record each number's spread in aigc_utils/assets/seeds"
	@echo "make timings  how long each notebook takes to run"
	@echo "make long-runs  retrain the shipped long-run weights (GPU if present; about two hours on 2 CPU cores)"
	@echo "make student  notebooks without solutions or outputs, for students, in _build/student"
	@echo "make grade SUBMISSIONS=dir   run each student's notebooks (dir/STUDENT/CHAPTER.ipynb), one CSV row per exercise in grades.csv (GRADES=...)"
	@echo "make colab    Colab editions of the chapters (MyST resolved), in colab/student and colab/teacher"
	@echo "make lab      open JupyterLab"
	@echo "make clean    remove build outputs (distclean also removes .venv)"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || { \
		echo "The course's pinned tools need Python 3.11 or newer; $(PYTHON) is" \
		"$$($(PYTHON) -c 'import platform; print(platform.python_version())')." \
		"Install Python 3.11+ and run make PYTHON=python3.11 ..."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	touch $@

book: $(STAMP)
	rm -rf _build/html
	$(BIN)/python tools/nbtools.py student _build/student >/dev/null  # the kit links its zip
	$(BIN)/jupyter-book build . --warningiserror --nitpick --keep-going --builder html
	@echo "The book is at file://$(abspath _build/html/index.html)"

unit: $(STAMP)
	$(PYTEST) tests -m "not browser" --cov=aigc_utils --cov-report=term \
		--cov-fail-under=90 --durations=10

integrity: $(STAMP)
	$(BIN)/python tools/nbtools.py check

notebooks: $(STAMP)
	PYTHONPATH=tools $(PYTEST) -p pytest_nbtiming --nbval-lax \
		--nbval-sanitize-with tools/nbval_sanitize.cfg --nbval-cell-timeout=1800 \
		--durations=20 $(NOTEBOOKS)

browser: $(STAMP)
	$(PYTEST) tests -m browser -v

test: unit integrity notebooks book browser

check: unit integrity book browser

execute: $(STAMP)
	$(BIN)/python tools/nbtools.py execute $(NB)
	$(BIN)/python tools/colab.py  # the Colab editions carry the new numbers

seeds: $(STAMP)
	PYTHONPATH=tools $(BIN)/python tools/nbtools.py seeds $(NB)

timings: $(STAMP)
	PYTHONPATH=tools $(BIN)/python tools/nbtools.py timings

long-runs: $(STAMP)
	$(BIN)/python -m aigc_utils.longrun gpt ddpm dcgan --shipped --overwrite

student: $(STAMP)
	rm -rf _build/student
	$(BIN)/python tools/nbtools.py student _build/student
	@echo "The student notebooks are in $(abspath _build/student)/notebooks"

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "Say where the submissions are:" \
		"make grade SUBMISSIONS=dir (one folder per student, named by the" \
		"student's id, holding the chapters' notebooks; see tools/grade.py)"; exit 2; }
	$(BIN)/python tools/grade.py "$(SUBMISSIONS)" --out "$(GRADES)"

colab: $(STAMP)
	$(BIN)/python tools/colab.py

lab: $(STAMP)
	$(BIN)/jupyter lab

lint: $(STAMP)
	$(BIN)/ruff check aigc_utils tests tools _ext
	$(BIN)/ruff format --check aigc_utils tests tools _ext

clean:
	rm -rf _build .pytest_cache .coverage htmlcov
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
