"""What every exercise's test_checks.py shares: which file to test, and a server runner.

Theory of operation
-------------------
**Which file.** Each exercise directory holds ``starter.py`` (the file a
student edits) and ``solution.py``. The fixture ``exercise`` imports one of
them from the directory of the requesting test file, chosen by the
environment variable ``NETSERV_EXERCISE_TARGET``: ``starter`` (the default)
or ``solution``. A student runs::

    make check EX=02      (the same as: .venv/bin/python -m pytest lessons/exercises/ex02_line_echo)

and an instructor checks the reference solutions with::

    NETSERV_EXERCISE_TARGET=solution .venv/bin/python -m pytest lessons/exercises

The course's proof (tests/test_exercises.py) tests other files: a starter
generated afresh into a temporary folder, and each wrong variant in
``wrong/``. It names them in a JSON file, ``{"exNN_name": "/path/to/module.py"}``,
given in ``NETSERV_EXERCISE_MAP``; when that variable is set it decides, and a
student's own starter.py is never read. For a wrong variant one failing check
is the proof, so with ``NETSERV_EXERCISE_FAIL_FAST=1`` the checks of an
exercise after its first failure are skipped (a variant that hangs a server
costs one client timeout, not one per check).

**When the checks run.** Only when the command line names
``lessons/exercises`` or a path inside it (as above): see lessons/conftest.py.
``make test`` proves them instead, in tests/test_exercises.py.

**Running a server.** ``serve(server)`` runs ``server.serve_forever()`` in
a thread for the length of a ``with`` block, then shuts it down and closes
it. It records what went wrong on the server side, where a test cannot see
it: every exception that reached ``handle_error`` (the server keeps going,
the request is closed) and any exception that stopped the loop. A test that
fails gets those errors attached to its message (``NotImplementedError:
TODO ...`` tells a student where to look); a test that passes while the
server recorded errors fails too, because a correct server handles bad input
without raising.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import pathlib
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

TARGET_VARIABLE = "NETSERV_EXERCISE_TARGET"
TARGETS = ("starter", "solution")
MAP_VARIABLE = "NETSERV_EXERCISE_MAP"
FAIL_FAST_VARIABLE = "NETSERV_EXERCISE_FAIL_FAST"

#: Seconds a test may wait for the server loop to stop at the end of a block:
#: shutdown() is prompt in netserv, so only a handler stuck in a call can
#: take this long, and then the test should fail rather than hang.
STOP_TIMEOUT = 10.0


def target_name() -> str:
    name = os.environ.get(TARGET_VARIABLE, "starter")
    if name not in TARGETS:
        raise pytest.UsageError(f"{TARGET_VARIABLE}={name!r}: choose one of {', '.join(TARGETS)}")
    return name


# -- fail fast (the proof against wrong variants) -------------------------------

_failed: set[str] = set()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if os.environ.get(FAIL_FAST_VARIABLE) and item.path.parent.name in _failed:
        pytest.skip(f"{FAIL_FAST_VARIABLE}: an earlier check of this exercise failed")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed:
        _failed.add(item.path.parent.name)
    return report


# -- the file under test --------------------------------------------------------

@pytest.fixture
def exercise(request: pytest.FixtureRequest) -> ModuleType:
    """The module under test (starter.py or solution.py, or the mapped file) for this test file."""
    directory = pathlib.Path(str(request.path)).resolve().parent
    mapping = os.environ.get(MAP_VARIABLE)
    if mapping:
        files = json.loads(pathlib.Path(mapping).read_text(encoding="utf-8"))
        if directory.name not in files:
            raise pytest.UsageError(f"{MAP_VARIABLE}: no file for {directory.name}")
        return load_path(pathlib.Path(files[directory.name]), directory.name)
    return load_path(directory / f"{target_name()}.py", directory.name)


_loaded: dict[pathlib.Path, ModuleType] = {}


def load(directory: pathlib.Path, name: str) -> ModuleType:
    """Import ``directory/name.py`` by path, once per run."""
    return load_path(directory / f"{name}.py", directory.name)


def load_path(path: pathlib.Path, exercise_name: str) -> ModuleType:
    """Import the file at *path* as exercise *exercise_name*'s module, once per run."""
    if path not in _loaded:
        module_name = f"exercise_{exercise_name}_{path.stem}_{len(_loaded)}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None, f"cannot import {path}"
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        spec.loader.exec_module(module)
        _loaded[path] = module
    return _loaded[path]


# -- running a server -------------------------------------------------------------

class ServerErrors(list):
    """Exceptions seen on the server side, formatted for a test's message."""

    def report(self) -> str:
        return "\n".join(["the server side raised:"] + [
            "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
            + f"  (in {where})" for where, exc in self])


@contextlib.contextmanager
def _serving(server: Any, fail: bool = True) -> Iterator[Any]:
    errors = ServerErrors()
    server.errors = errors

    def handle_error(request: Any, client_address: Any) -> None:
        errors.append(("a request", sys.exc_info()[1]))

    def loop() -> None:
        try:
            server.serve_forever(poll_interval=0.05)
        except BaseException as exc:  # reported by the test, not lost in a thread
            errors.append(("serve_forever", exc))

    server.handle_error = handle_error  # the pipeline calls self.handle_error
    thread = threading.Thread(target=loop, name="exercise-server", daemon=True)
    thread.start()
    try:
        yield server
    except BaseException as exc:
        if errors:
            exc.add_note(errors.report())
        raise
    finally:
        if thread.is_alive():
            server.shutdown()
        thread.join(STOP_TIMEOUT)
        server.server_close()
    if errors and fail:
        pytest.fail(errors.report(), pytrace=False)


@pytest.fixture
def serve() -> Callable[[Any], contextlib.AbstractContextManager[Any]]:
    """``with serve(server) as server:`` runs it in a thread, then stops and closes it."""
    return _serving


# -- a line client ------------------------------------------------------------------

#: Seconds a check waits for one reply: ample on a loaded machine; a server
#: that never answers fails the check instead of hanging it. The proof against
#: wrong variants shortens it (NETSERV_EXERCISE_CLIENT_TIMEOUT): there a reply
#: that never comes is the expected failure, and a shorter wait only fails sooner.
CLIENT_TIMEOUT = float(os.environ.get("NETSERV_EXERCISE_CLIENT_TIMEOUT", "5.0"))


@pytest.fixture
def client_timeout() -> float:
    """CLIENT_TIMEOUT, for checks that open their own sockets (exercise 12's TLS clients)."""
    return CLIENT_TIMEOUT


class Client:
    """A stream client with a timeout, reading replies line by line.

    ``line()`` returns one line with its newline, or ``b""`` once the server
    closed the connection (and whatever partial line it left, if any).
    Close it (or use ``with``) before the server stops: a server thread may
    be waiting for this client to speak.
    """

    def __init__(self, address: Any, source: str | None = None,
                 timeout: float = CLIENT_TIMEOUT) -> None:
        family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            if source is not None:
                self.sock.bind((source, 0))
            self.sock.connect(address)
        except BaseException:
            self.sock.close()
            raise
        self._buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                rest, self._buffer = self._buffer, b""
                return rest
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"

    def ask(self, request: bytes) -> bytes:
        """Send one request line and return the one reply line."""
        self.send(request)
        return self.line()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def connect() -> type[Client]:
    """``with connect(server.server_address) as client:`` a line client."""
    return Client


# -- conversations: the student's server against the reference ---------------------

#: Settings of every generated conversation: deterministic (derandomize: the
#: seed comes from the test's name), nothing written to an example database,
#: few enough examples that one exercise's conversations take seconds. A
#: fixture-using test runs its examples with the same fixtures, which is what
#: these tests want (``serve`` is a factory), hence the health check.
#: With NETSERV_EXERCISE_FAIL_FAST (the proof, the mutation runs) a failure is
#: all that is asked: hypothesis does not spend time shrinking it.
settings.register_profile(
    "exercises", derandomize=True, database=None, deadline=None, max_examples=40,
    print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate] if os.environ.get(FAIL_FAST_VARIABLE)
    else list(Phase))
settings.load_profile("exercises")


@pytest.fixture
def reference(request: pytest.FixtureRequest) -> ModuleType:
    """This exercise's solution.py: the server every conversation is compared with."""
    return load(pathlib.Path(str(request.path)).resolve().parent, "solution")


def talk(address: Any, pieces: list[bytes], timeout: float = CLIENT_TIMEOUT) -> tuple[bytes, str]:
    """Send each piece with its own send(), half-close, read until the server closes.

    Returns (every byte received, how it ended). A server that resets the
    connection counts as closing it; one that neither closes nor answers
    within *timeout* after the client's end of file ends "still open".
    """
    received, end = [], "closed"
    with socket.create_connection(address, timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # a piece, a segment
        with contextlib.suppress(OSError):  # the server closed first: part of what it did
            for piece in pieces:
                sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        try:
            while chunk := sock.recv(65536):
                received.append(chunk)
        except TimeoutError:
            end = f"still open {timeout:g} s after the client's end of file"
        except ConnectionResetError:
            pass
    return b"".join(received), end


def observe(server: Any, converse: Callable[[Any], Any]) -> Any:
    """What ``converse(address)`` observes of a fresh *server*, and its server-side errors."""
    with _serving(server, fail=False) as running:
        seen = converse(running.server_address)
    return seen, [f"{type(exc).__name__}: {exc}" for _, exc in running.errors]


def differ(conversation: str, ours: Any, theirs: Any) -> None:
    """Fail, in the student's terms, if *theirs* differs from the reference's *ours*."""
    assert theirs == ours, (
        "your server and the reference solution answer this conversation differently "
        "(the shortest such conversation found):\n"
        f"  the client sent:         {conversation}\n"
        f"  the reference answered:  {ours}\n"
        f"  your server answered:    {theirs}")


class Conversation:
    """The helpers above, for a test file (conftest cannot be imported by name)."""

    timeout = CLIENT_TIMEOUT
    talk = staticmethod(talk)
    observe = staticmethod(observe)
    differ = staticmethod(differ)


@pytest.fixture
def conversation() -> type[Conversation]:
    """``conversation.talk/observe/differ``: hold a conversation, compare with the reference."""
    return Conversation


@pytest.fixture
def checks(request: pytest.FixtureRequest) -> ModuleType:
    """The requesting test's sibling test_checks.py (for its helpers, e.g. how to serve)."""
    return load(pathlib.Path(str(request.path)).resolve().parent, "test_checks")
