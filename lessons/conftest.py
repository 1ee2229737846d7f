"""When the exercise checks run: only when asked for by name.

Theory of operation
-------------------
The checks in lessons/exercises/*/test_checks.py test ``starter.py`` by
default, the unfinished file a student edits, so they fail until the student
is done. They are collected only when the command line names
``lessons/exercises`` or a path inside it::

    make check EX=02      (runs: .venv/bin/python -m pytest lessons/exercises/ex02_line_echo)

``make test`` runs ``pytest tests lessons``: there the exercise checks are
not collected, and the header of the run says so. ``make test`` proves
them instead, in tests/test_exercises.py, on copies (they pass on every
solution.py, fail on a freshly generated starter and on every wrong variant,
and the committed starters are up to date): a student's starter.py is never
part of ``make test``. Fixtures shared
by the checks live in lessons/exercises/conftest.py.

This file is at lessons/ (not in exercises/) so that pytest reads it at
start-up whenever ``lessons`` or anything in it is on the command line, and
the header line appears in both cases.
"""

from __future__ import annotations

import os
import pathlib

import pytest

EXERCISES = pathlib.Path(__file__).resolve().parent / "exercises"
TARGET_VARIABLE = "NETSERV_EXERCISE_TARGET"


def exercises_named(config: pytest.Config) -> bool:
    """True if a command-line path is lessons/exercises or inside it."""
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if path == EXERCISES or EXERCISES in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: pathlib.Path, config: pytest.Config) -> bool | None:
    inside = collection_path == EXERCISES or EXERCISES in collection_path.parents
    if inside and not exercises_named(config):
        return True  # e.g. `pytest tests lessons` (make test): proven by tests/test_exercises.py
    return None


def pytest_report_header(config: pytest.Config) -> str:
    if exercises_named(config):
        target = os.environ.get(TARGET_VARIABLE, "starter")
        return f"exercise checks: testing {target}.py (set {TARGET_VARIABLE} to change)"
    return ("exercise checks: not collected here (run one exercise's with `make check EX=NN`); "
            "make test proves them in tests/test_exercises.py")
