# netserv: one command per chore. Needs only GNU make and Python 3.11+.
#
#   make lab         set up .venv (course + test extras), open JupyterLab on the course
#   make test        set up .venv (test extra): lint, type check, every test, exercise check
#                    and notebook, the server tests and CPython's suites on 3.11-3.15
#   make pythons     fetch CPython 3.14 and 3.15 (Debian's builds) into .pythons/ for make test
#   make lint        ruff check and mypy --strict netserv (make test runs it first)
#   make notebooks   re-execute notebooks and save their outputs (NB=path for one)
#   make notebooks-busy  run the notebooks in full mode under nbval, cores kept busy
#   make nav         rewrite the navigation cells of the notebooks
#   make course-map  rewrite the course's tables and counts from lessons/course.toml
#   make site        build the course website into build/site (open build/site/index.html)
#   make check EX=NN run the checks of exercise NN on your starter.py (e.g. EX=01)
#   make starters    regenerate exercise starters (never overwrites one you changed)
#   make release     the students' copy, without solutions: build/student/ and a tarball
#   make without-features  the course as on a system without fork, AF_UNIX, mallopt, 127.0.0.2
#   make mistake EX=NN FROM=copy.py NAME=name WHY="Wrong: ..."  keep a new wrong answer
#   make mutants     mutation score of the exercises' checks (EX=NN for one; slow)
#   make checks-busy every exercise's checks 50 times on the solution under 2 CPU hogs
#   make clean       remove .venv and every cache
#
# Set-up is lazy: .venv is created when it is missing, and the package is
# (re)installed only when pyproject.toml changes. A stamp file inside .venv,
# named after a checksum of pyproject.toml and the extras, records the last
# installation, so a second `make test` goes straight to the tests.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

# Checksum of pyproject.toml: a changed file names a stamp that does not exist yet.
PYPROJECT_KEY := $(firstword $(shell cksum pyproject.toml))
TEST_STAMP := $(VENV)/.installed-test-$(PYPROJECT_KEY)
COURSE_STAMP := $(VENV)/.installed-course-test-$(PYPROJECT_KEY)

# Exercise checks live in lessons/; the directory may not exist yet.
TEST_DIRS := tests $(wildcard lessons)
NOTEBOOKS := $(wildcard notebooks/[0-9][0-9]_*.ipynb)

# Seconds one notebook cell may run under nbval. NETSERV_QUICK=1 scales the load
# experiments down to seconds; the margin is for a busy 2-core CI machine.
CELL_TIMEOUT := 180
# pytest-timeout's limit for one nbval item (a cell, plus kernel start for the
# first one): above CELL_TIMEOUT so that nbval's own, clearer message comes first.
NB_ITEM_TIMEOUT := 300

# The notebook step.
# * --nbval-lax: run every cell, fail on any error, compare the outputs only
#   of cells tagged nbval-check-output. Correctness lives in asserts.
# * --nbval-current-env: the kernel is this .venv's Python, whatever the
#   notebook's metadata says.
# * stderr is never compared: notebooks/conftest.py adds "stderr" to nbval's
#   skip_compare (the way nbval's documentation gives to skip an output type).
#   A server's traceback, printed to stderr by handle_error in a server thread,
#   carries paths and line numbers, and ipykernel may file a background
#   thread's output under a later cell: comparing stderr would fail or flake.
#   An exception raised by a cell still fails it (that is an "error" output,
#   not a stream), and tests/test_notebooks.py rejects tracebacks and warnings
#   in the committed outputs.
# * Warnings: the configuration makes every warning an error. Code in a
#   notebook runs in the kernel, a separate process, so its warnings never
#   reach pytest: the kernel prints them to the cell's stderr. The only
#   warnings pytest sees here come from nbval, jupyter_client and zmq, so their
#   deprecation warnings are shown in the summary instead of failing a cell.
NBVAL_FLAGS := --nbval-lax --nbval-current-env \
	--nbval-sanitize-with notebooks/nbval_sanitize.cfg \
	--nbval-cell-timeout=$(CELL_TIMEOUT) --timeout=$(NB_ITEM_TIMEOUT) \
	-W default::DeprecationWarning -W default::PendingDeprecationWarning

.DEFAULT_GOAL := help
.PHONY: help lab lab-setup lint test site multi-python notebooks notebooks-busy nav course-map check check-setup release without-features starters check-starters clean pythons mistake mistakes mutants checks-busy

# The command list above, up to its first empty comment line.
help:
	@sed -n '3,/^#$$/{s/^# //p}' Makefile

# ---------------------------------------------------------------- set-up

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "netserv needs Python 3.11 or newer; try: make PYTHON=python3.12 ...")'
	$(PYTHON) -m venv $(VENV)

$(TEST_STAMP): | $(PY)
	@echo "make: installing netserv[test] into $(VENV) (the first time takes a few minutes)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-test-*
	touch $@

# [course,test] includes [test], so this also stamps the test installation.
$(COURSE_STAMP): | $(PY)
	@echo "make: installing netserv[course,test] into $(VENV) (the first time takes a few minutes)"
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[course,test]'
	rm -f $(VENV)/.installed-course-test-* $(VENV)/.installed-test-*
	touch $@ $(TEST_STAMP)

# The classroom tools (repo2docker, cffconvert, actionlint: pyproject's
# [classroom] extra) live in their own venv: cffconvert's dependencies
# conflict with JupyterLab's. tests/test_classroom.py finds them through
# NETSERV_TOOLS_BIN and skips, saying why, where they are missing.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-classroom-$(PYPROJECT_KEY)
$(TOOLS_STAMP): | $(PY)
	@echo "make: installing netserv[classroom] into $(TOOLS_VENV)"
	$(PY) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[classroom]'
	rm -f $(TOOLS_VENV)/.installed-classroom-*
	touch $@

# ---------------------------------------------------------------- commands

# The set-up of `make lab` without starting JupyterLab: what a Codespace or a
# dev container runs once when it is created (.devcontainer/devcontainer.json).
lab-setup: $(COURSE_STAMP)
	@echo "make: .venv is ready; start the course with: make lab"

# JupyterLab on loopback only, never all interfaces. Its root is the repository
# (so that the notebooks' links into ../lessons/ open) and it starts in notebooks/.
# Jupyter refuses to run as root unless told --allow-root: in a container that
# runs as root (Binder-like images, CI, some laptops' Docker set-ups) the recipe
# adds the flag itself and says so. Extra options go in LAB_FLAGS, e.g.
# LAB_FLAGS=--no-browser.
LAB_FLAGS ?=
lab: $(COURSE_STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
		echo "make lab: running as root, so adding --allow-root (Jupyter refuses root otherwise)"; \
		root_flag=--allow-root; \
	fi; \
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=$(CURDIR) \
		--LabApp.default_url=/lab/tree/notebooks $$root_flag $(LAB_FLAGS)

# Some jupyter_core 5.x releases, still allowed by the pinned ranges, raise a
# DeprecationWarning ("Jupyter is migrating its paths to use standard
# platformdirs") when nbval's plugin imports jupyter_client, unless this opt-in
# to the new paths is set; with warnings as errors that would break every
# pytest run. Current releases take the new paths anyway.
test: export JUPYTER_PLATFORM_DIRS = 1
test: export NETSERV_TOOLS_BIN = $(CURDIR)/$(TOOLS_VENV)/bin

# ---- lint and type check: configuration in pyproject.toml ([tool.ruff],
# [tool.mypy]): ruff over the whole tree (it excludes notebooks and exercise
# code, see pyproject), mypy --strict over the whole package.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check
	$(VENV)/bin/mypy --strict netserv

# ---- other interpreters: the server tests on every other CPython 3.11-3.15
# found (a venv each, made once: .venv-py3.X), then CPython's own suites for
# socketserver and the servers built on it, with netserv injected as
# socketserver, on each version. A version that is missing prints SKIP.
# `make pythons` fetches 3.14 and 3.15 where the machine lacks them (Debian's
# builds, run from .pythons/; on another system it says why and does nothing).
pythons:
	$(PYTHON) tools/fetch_pythons.py

multi-python: $(TEST_STAMP)
	$(PY) tools/multi_python.py
	$(PY) tools/cpython_suites.py

# Order: lint and type check, tests and exercise checks, the other
# interpreters, the starters' consistency (once the lessons tool exists),
# then the notebooks. pytest's exit code 5 ("no tests collected")
# is a failure in every step: the notebook step is skipped, visibly, only while
# there is no notebooks/NN_*.ipynb at all.
test: $(TEST_STAMP) $(TOOLS_STAMP) lint
	$(PY) -m pytest $(TEST_DIRS)
	$(MAKE) --no-print-directory multi-python
ifneq ($(wildcard tools/make_starters.py),)
	$(PY) tools/make_starters.py --check
endif
ifeq ($(NOTEBOOKS),)
	@echo "make test: no notebooks/NN_*.ipynb yet: notebook step skipped"
else
	NETSERV_QUICK=1 $(PY) -m pytest $(NBVAL_FLAGS) notebooks/
endif

notebooks: $(TEST_STAMP)
	$(PY) tools/run_notebooks.py $(NB)

# Full mode on a busy machine: every notebook (or NB=...) under nbval WITHOUT
# NETSERV_QUICK, while tools/cpu_hog.py keeps every core busy (one spinning
# process per core, each bounded in time, all stopped when pytest ends). The
# load experiments' asserts must hold here too: they compare models measured in
# the same run, with wide margins. Full-mode cells take longer, on a loaded
# machine longer still: hence the longer timeouts.
BUSY_CELL_TIMEOUT := 900
BUSY_ITEM_TIMEOUT := 1200
BUSY_NBVAL_FLAGS := $(filter-out --nbval-cell-timeout=% --timeout=%,$(NBVAL_FLAGS)) \
	--nbval-cell-timeout=$(BUSY_CELL_TIMEOUT) --timeout=$(BUSY_ITEM_TIMEOUT)
notebooks-busy: export JUPYTER_PLATFORM_DIRS = 1
notebooks-busy: $(TEST_STAMP)
	env -u NETSERV_QUICK $(PY) tools/cpu_hog.py -- \
		$(PY) -m pytest $(BUSY_NBVAL_FLAGS) $(or $(NB),notebooks/)

# ---- the course website: Sphinx with MyST-NB over the course's pages and the committed
# notebooks (never executed here: nbval proves them), configured in site/conf.py, into
# build/site, which git ignores. Warnings are errors, so a broken link or an unknown term
# fails the build. REPOSITORY_URL=https://github.com/OWNER/REPO adds Binder links.
SITE_FLAGS := -q -W --keep-going -E -c site -b html
site: $(TEST_STAMP)
	REPOSITORY_URL="$(REPOSITORY_URL)" $(PY) -m sphinx $(SITE_FLAGS) . build/site
	@echo "make site: built build/site; open build/site/index.html"

nav: $(TEST_STAMP)
	$(PY) tools/nav.py

# The course map: README, lessons/README.md, notebook 00 and the instructor
# notes list the course from lessons/course.toml (tests/test_course_map.py
# fails when they drift).
course-map: $(TEST_STAMP)
	$(PY) tools/course_map.py

# ---- exercises: tools/make_starters.py belongs to the lessons (see lessons/).
# `make check EX=01` runs one exercise's checks on the student's starter.py; EX
# may be 1, 01, ex01 or the directory's name. The checks are pytest files, so
# this is `pytest lessons/exercises/ex01_...` with a clear message for a
# missing or unknown EX.
EXERCISE_DIRS := $(sort $(patsubst %/test_checks.py,%,$(wildcard lessons/exercises/ex[0-9][0-9]_*/test_checks.py)))
EXERCISE_LIST := $(patsubst lessons/exercises/%,%,$(EXERCISE_DIRS))
check: $(TEST_STAMP)
	@n='$(strip $(EX))'; n=$${n#ex}; n=$${n%%_*}; \
	case "$$n" in [0-9]) n=0$$n ;; esac; \
	if [ -z "$$n" ]; then \
		echo "make check: say which exercise, e.g. make check EX=01. Exercises: $(EXERCISE_LIST)"; exit 2; \
	fi; \
	dir=$$(ls -d lessons/exercises/ex$${n}_* 2>/dev/null | head -n 1); \
	if [ -z "$$dir" ] || [ ! -f "$$dir/test_checks.py" ]; then \
		echo "make check: no exercise '$(EX)'. Exercises: $(EXERCISE_LIST)"; exit 2; \
	fi; \
	echo "make check: the checks of $$dir, on your $$dir/starter.py"; \
	$(PY) -m pytest -p no:cacheprovider -p no:nbval --tb=short "$$dir"

# What `make check` needs, installed ahead (GitHub Classroom's autograding
# runs it once before the checks of every exercise).
check-setup: $(TEST_STAMP)

# FORCE=1 also overwrites starters changed by hand (each is kept as starter.py.bak).
starters: $(TEST_STAMP)
	$(PY) tools/make_starters.py $(if $(FORCE),--force)

check-starters: $(TEST_STAMP)
	$(PY) tools/make_starters.py --check

# A wrong answer seen in class, kept as a patch against the solution (wrong/NAME.patch):
# edit a copy of solution.py, then e.g.
#   make mistake EX=10 FROM=/tmp/mine.py NAME=reads_body_for_put_only WHY="Wrong: ..."
# `make mistakes` converts whole-copy wrong/*.py (the older format) into patches.
mistake: $(TEST_STAMP)
	@if [ -z '$(EX)' ] || [ -z '$(FROM)' ] || [ -z '$(NAME)' ] || [ -z '$(WHY)' ]; then \
		echo 'make mistake: say EX=NN FROM=edited_copy.py NAME=short_name WHY="Wrong: ..."'; exit 2; fi
	$(PY) tools/mistakes.py new '$(EX)' '$(FROM)' '$(NAME)' '$(WHY)'

mistakes: $(TEST_STAMP)
	$(PY) tools/mistakes.py convert $(EX)

# How strong are the checks? Mutants of each solution's SOLUTION blocks, each run
# through that exercise's checks; the table lands in lessons/exercises/MUTATION.md.
# JOBS mutants at a time. The full run takes the better part of an hour on 2 cores.
JOBS ?= 2
mutants: $(TEST_STAMP)
	$(PY) tools/mutate.py $(EX) -j $(JOBS) --markdown lessons/exercises/MUTATION.md

# No flaky check: COUNT runs of every check in a row, on the solution, while two
# processes keep two cores busy (EX=NN for one exercise).
COUNT ?= 50
checks-busy: $(TEST_STAMP)
	$(PY) tools/cpu_hog.py --hogs 2 -- $(PY) tools/repeat_checks.py --count $(COUNT) $(EX)
# ---- end of exercises

# The course as on a system without fork(), AF_UNIX, glibc's mallopt() or
# 127.0.0.2 (tools/without_features.py): every notebook and exercise, or the
# paths in WITHOUT_PATHS. make test runs a quick subset (tests/test_without_features.py).
without-features: export JUPYTER_PLATFORM_DIRS = 1
without-features: $(TEST_STAMP)
	$(PY) tools/without_features.py $(WITHOUT_PATHS)

# The students' copy: tools/release.py leaves out solutions, wrong variants and
# the instructor's files, then proves no solution text is left (exit 1 if any).
# Standard library only: no .venv needed.
release:
	$(PYTHON) tools/release.py

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .venv-py3.* .pythons .pytest_cache .ruff_cache .mypy_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -type d -prune -exec rm -rf {} +
