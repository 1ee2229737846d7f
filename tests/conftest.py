"""Test-wide rules for tests/: warnings are errors, and nothing may leak.

Theory of operation
-------------------
Every test under tests/ is judged by a census of the process (support.py)
taken before the test (by the autouse fixture :func:`no_leaks`) and after
all its fixtures are torn down (by the pytest_runtest_teardown hook):

* open file descriptors (``/proc/self/fd``),
* live threads (``threading.enumerate()``),
* child processes, running or zombie (``/proc/*/stat`` whose parent is us).

Whatever is new afterwards is a leak and fails the test with a message that
names it. Before judging, the fixture gives the test's leftovers a grace
period to finish on their own: it *joins* new threads and waits for
``/proc`` to show new children gone, up to :data:`GRACE_SECONDS` in all. It
never reaps a child itself (that would steal an exit status from whoever
owns it) and never closes an fd.

Things that live for the whole session (pytest's capture files, a font
cache matplotlib opens and closes, an import that starts a helper thread)
were already there before the test, or are gone after it: the census
compares before and after each test, so they never count.

Every warning, ResourceWarning first, is an error in these tests (a
``filterwarnings("error")`` mark is added to each item, so a test's own
``filterwarnings`` marks still take precedence). The garbage collector runs
before the census, so that an unclosed socket held in a reference cycle
warns inside the test that leaked it.

The one warning expected by name: a test of a forking model (ForkingMixIn,
pre-fork: its name or a parameter says so) forks from a process that runs other
threads (the serve loop's, pytest's), which Python 3.12+ warns about and 3.15
raises under "error" (support.expects_fork_with_threads_warning). Those tests,
and only for that message, get a filter mark; tests/test_forking.py checks
that the warning is given, as by the standard module.

Opt out, with a reason, for the rare justified case::

    @pytest.mark.allow_leaks("the resource tracker of multiprocessing lives on")
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# Test modules import their shared helpers as ``import support``; pytest's
# import mode may not put this directory on sys.path by itself.
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from support import (  # noqa: E402
    child_processes,
    expects_fork_with_threads_warning,
    open_fds,
)

#: How long a test's leftover threads and children may take to finish on
#: their own before they count as leaked: a handler thread that is sending
#: its last reply on a loaded 2-core machine needs well under a second.
GRACE_SECONDS = 5.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_leaks(reason): do not fail this test for fds, threads or child "
        "processes it leaves behind (give the reason)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Warnings as errors for the tests in this directory, even when pytest
    runs without the project's configuration (pyproject.toml sets them too;
    the time limit per test is set there)."""
    ours = False
    for item in items:
        if HERE not in Path(str(item.path)).resolve().parents:
            continue
        ours = True
        # Prepended, so it is applied first and any filterwarnings mark the
        # test carries itself is applied after it and wins.
        item.add_marker(pytest.mark.filterwarnings("error"), append=False)
        if _forks(item):
            item.add_marker(expects_fork_with_threads_warning)
    if ours:
        # Everything that exists now (pytest, plugins, imported modules) is
        # moved out of the collector's sight, so the gc.collect() after each
        # test scans only what tests created: milliseconds, not 0.1 s each.
        gc.collect()
        gc.freeze()


def _forks(item: pytest.Item) -> bool:
    """Whether the test's name, or one of its parameters, names forking (a
    forking model or server class)."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    names = [getattr(item, "originalname", item.name)]
    names += [str(getattr(value, "__name__", value)) for value in params]
    return any("fork" in name.lower() for name in names)


# -- judging the census ----------------------------------------------------

def _wait_for_threads(new: list[threading.Thread], deadline: float) -> None:
    for thread in new:
        thread.join(max(0.0, deadline - time.monotonic()))


def _wait_for_children(before: dict[int, str], deadline: float) -> dict[int, str]:
    """New children, re-read until none are left or the deadline passes.

    A child reaped by its owner just after the test (a server's last
    collect_children) disappears from /proc; we wait on that with a short
    back-off, since there is no event to wait on for another's child.
    """
    delay = 0.001
    while True:
        new = {pid: s for pid, s in child_processes().items() if pid not in before}
        if not new or time.monotonic() >= deadline:
            return new
        time.sleep(delay)
        delay = min(2 * delay, 0.05)


_BASELINE = pytest.StashKey[tuple]()


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Take the census before the test; pytest_runtest_teardown judges after it.

    Being an autouse function fixture, this runs after module- and
    session-scoped fixtures are set up (what they open is not the test's),
    and is torn down after every other function fixture. Its teardown gives
    the test's threads their grace period and runs the garbage collector,
    while pytest still attributes warnings to this test; the judgement comes
    later, once capfd, tmp_path and the like are gone too.
    """
    if request.node.get_closest_marker("allow_leaks") is not None:
        yield
        return
    threads_before = set(threading.enumerate())
    request.node.stash[_BASELINE] = (open_fds(), threads_before, child_processes())
    yield
    new_threads = [t for t in threading.enumerate() if t not in threads_before]
    _wait_for_threads(new_threads, time.monotonic() + GRACE_SECONDS)
    gc.collect()  # objects in reference cycles warn (and close) now


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    result = yield
    baseline = item.stash.get(_BASELINE, None)
    if baseline is not None:
        problems = _leaks(*baseline)
        if problems:
            pytest.fail(f"{item.nodeid} leaked:\n  " + "\n  ".join(problems)
                        + "\n(mark it @pytest.mark.allow_leaks(reason) only if intended)",
                        pytrace=False)
    return result


def _leaks(fds_before: dict[int, str], threads_before: set[threading.Thread],
           children_before: dict[int, str]) -> list[str]:
    """What is new since the census, after a grace period; one line per kind."""
    new_threads = [t for t in threading.enumerate() if t not in threads_before]
    new_children = _wait_for_children(children_before, time.monotonic() + GRACE_SECONDS)
    fds_after = open_fds()

    problems = []
    leaked_threads = [t for t in new_threads if t.is_alive()]
    if leaked_threads:
        problems.append("threads still running: " + ", ".join(
            f"{t.name} (daemon={t.daemon})" for t in leaked_threads))
    if new_children:
        problems.append("child processes not reaped: " + ", ".join(
            f"pid {pid} ({'zombie' if s == 'Z' else 'state ' + s})"
            for pid, s in sorted(new_children.items())))
    # New numbers only: pytest's capture points 0-2 elsewhere while a test
    # runs, and a test may close and reopen a number it inherited.
    leaked_fds = {fd: target for fd, target in fds_after.items() if fd not in fds_before}
    if leaked_fds:
        problems.append("file descriptors left open: " + ", ".join(
            f"{fd} -> {target}" for fd, target in sorted(leaked_fds.items())))
    return problems
