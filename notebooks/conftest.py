"""nbval settings for the course notebooks (the notebook step of ``make test``).

Theory of operation
-------------------
``make test`` runs ``pytest --nbval-lax`` on this folder: every code cell runs
in a fresh kernel, any exception fails its cell, and only cells tagged
``nbval-check-output`` have their outputs compared with the committed ones,
after the regexes of ``nbval_sanitize.cfg`` have been applied to both.

This file adds one rule: the ``stderr`` stream is never compared. Servers in
the notebooks run in background threads; when a handler fails, the server's
``handle_error`` prints a traceback to stderr, with paths and line numbers that
differ between machines, and ipykernel may attach a background thread's output
to whichever cell is running at that moment. Comparing stderr would make a
checked cell fail or flake for reasons that have nothing to do with what it
teaches. nbval's documented way to skip an output type is to extend the
collector's ``skip_compare`` in ``pytest_collectstart``; that is what this does.

What this does not hide: a cell that raises still fails (an ``error`` output is
not a stream), stdout of checked cells is still compared, and
``tests/test_notebooks.py`` rejects committed outputs that contain a traceback
or a warning.
"""

from __future__ import annotations

import pytest

#: Output keys nbval must not compare, on top of its own defaults.
NEVER_COMPARED = ("stderr",)


def pytest_collectstart(collector: pytest.Collector) -> None:
    """Extend nbval's ``skip_compare`` for each notebook it collects."""
    if collector.path is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += NEVER_COMPARED  # type: ignore[attr-defined]
