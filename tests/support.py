"""Shared helpers for the tests of netserv's core.

Theory of operation
-------------------
Most tests run the *same* server subclass, handler and client against the
standard ``socketserver`` and against ``netserv`` and compare what each saw.
This module supplies the pieces:

* :data:`IMPLS` and :func:`module` to parametrize over the two modules;
* :func:`make` and :func:`serving`: a server bound to loopback port 0 (or a
  socket file in a fresh temporary directory), served in a thread for the
  length of a ``with`` block, then shut down, closed and cleaned up;
* :class:`HookLog` and :func:`recording`: a subclass of any server (and of
  any handler) that logs every hook it runs, with the process and thread it
  ran in. The log is a pipe, so hooks that run in a forked child are logged
  too (each line is one write() shorter than PIPE_BUF, hence atomic);
* clients with timeouts (:func:`client`, :func:`exchange`), so that a hung
  server fails a test instead of hanging the suite;
* a server or a client in another, small process (:func:`server_process`,
  :func:`resetting_client`): for a forking server under load (fork() of
  the pytest process is slow) and for a client whose close() must reach the
  server although a forked child holds a copy of its socket;
* the census of the process (:func:`open_fds`, :func:`child_processes`)
  that tests/conftest.py uses to catch leaks.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Self

import pytest

import netserv
from netserv.lab import demo

#: The warning Python 3.12+ gives when a process that runs other threads
#: forks: "This process (pid=N) is multi-threaded, use of fork() may lead to
#: deadlocks in the child." From 3.15 a warnings filter "error" makes
#: os.fork() raise it in the parent, after the child was created.
FORK_WITH_THREADS = r".*multi-threaded.*fork"
#: The filterwarnings mark for tests that fork from a thread of the (multi-
#: threaded) test process on purpose: that warning, and nothing else, is
#: expected there. tests/test_forking.py checks that it is given, as the
#: standard module gives it; tests/conftest.py adds the mark to the tests of
#: forking models.
expects_fork_with_threads_warning = pytest.mark.filterwarnings(
    f"ignore:{FORK_WITH_THREADS}:DeprecationWarning")

# The names come from netserv.lab.demo, the one registry: MODELS are the
# models both modules have, compared side by side.
IMPLS = demo.IMPLS
MODELS = demo.STDLIB_MODELS
TRANSPORTS = tuple(demo.TRANSPORTS)
STREAM_TRANSPORTS = demo.STREAM_TRANSPORTS

#: Seconds a test client waits for a reply: a hung server fails the test
#: long before the suite's own time limit, a loaded machine still replies.
CLIENT_TIMEOUT = 10.0

#: poll_interval for serve_forever() in tests: short, so that the standard
#: module's polled shutdown() does not slow the suite down.
TEST_POLL_INTERVAL = 0.01

#: The hooks a recording server logs, in pipeline order.
SERVER_HOOKS = ("server_bind", "server_activate", "get_request", "verify_request",
                "process_request", "process_request_thread", "finish_request",
                "handle_error", "shutdown_request", "close_request", "handle_timeout",
                "service_actions", "server_close")
HANDLER_HOOKS = ("setup", "handle", "finish")


def module(impl: str) -> ModuleType:
    """The module under test: netserv or the standard socketserver."""
    return {"netserv": netserv, "stdlib": socketserver}[impl]


is_datagram = demo.is_datagram


# -- servers -----------------------------------------------------------------

@functools.cache
def server_class(model: str, transport: str, impl: str) -> type:
    """The combined class of netserv.lab.demo; for the stdlib before 3.13, which
    lacks ForkingUnix*Server, the one-line class 3.13 defines."""
    try:
        return demo.server_class(model, transport, impl)
    except ValueError:
        if impl != "stdlib" or model != "forking" or not hasattr(socketserver, "ForkingMixIn"):
            raise
        base = getattr(socketserver, demo.TRANSPORTS[transport])
        return type("Forking" + base.__name__, (socketserver.ForkingMixIn, base), {})


def make(model: str, transport: str, impl: str, handler: type | None = None,
         server_mixin: type | None = None, **attributes: Any) -> Any:
    """A bound server of a model and transport from one impl (see netserv.lab.demo).

    ``server_mixin`` (a class with no bases of its own, such as the one
    :func:`recording` returns) is put first in the new class's bases.
    """
    cls = server_class(model, transport, impl)
    bases = (server_mixin, cls) if server_mixin is not None else (cls,)
    cls = type(cls.__name__, bases, dict(attributes))
    return demo.bind(cls, transport, handler or demo.default_handler(model, transport))


@contextlib.contextmanager
def serving(server: Any, poll_interval: float = TEST_POLL_INTERVAL) -> Iterator[Any]:
    """serve_forever() in a thread for the block; then shutdown, close, clean up."""
    with demo.running(server, poll_interval=poll_interval) as running:
        yield running


@contextlib.contextmanager
def closing(server: Any) -> Iterator[Any]:
    """For a server driven with handle_request(): close and clean up at the end."""
    try:
        yield server
    finally:
        demo.cleanup(server)


@contextlib.contextmanager
def short_tempdir() -> Iterator[str]:
    """A fresh directory with a short path (a Unix socket path has ~100 bytes)."""
    path = tempfile.mkdtemp(prefix="netserv-test-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- clients -----------------------------------------------------------------

@contextlib.contextmanager
def client(server: Any, timeout: float = CLIENT_TIMEOUT) -> Iterator[socket.socket]:
    """A connected client socket with a timeout (see netserv.lab.demo.open_client)."""
    with demo.open_client(server, timeout) as sock:
        yield sock


def exchange(server: Any, message: bytes = b"hello\n", timeout: float = CLIENT_TIMEOUT) -> bytes:
    """Send one message and return the whole reply (half-closes a stream first)."""
    return demo.echo_once(server, message, timeout)


def recv_all(sock: socket.socket) -> bytes:
    """Read a stream until the server closes it."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# -- servers and clients in another process ------------------------------------

HERE = os.path.dirname(os.path.abspath(__file__))

#: Run by :func:`server_process` in a fresh interpreter: serve until a line
#: arrives on stdin, then close and report the process's own census.
_SERVER_PROCESS = """
import json, sys, threading
import support
from netserv.lab import demo
server = support.make(sys.argv[1], sys.argv[2], "netserv")
fds = support.open_fds()
loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
loop.start()
print(json.dumps({"address": server.server_address, "family": int(server.address_family),
                  "type": int(server.socket_type)}), flush=True)
sys.stdin.readline()
server.shutdown()
loop.join()
demo.cleanup(server)
print(json.dumps({"new_fds": sorted(set(support.open_fds()) - set(fds)),
                  "threads": [t.name for t in threading.enumerate()],
                  "children": support.child_processes()}), flush=True)
"""


class RemoteServer:
    """What clients need to know about a server running in another process."""

    def __init__(self, description: dict[str, Any], transport: str) -> None:
        address = description["address"]
        self.server_address = tuple(address) if isinstance(address, list) else address
        self.address_family = socket.AddressFamily(description["family"])
        self.socket_type = socket.SocketKind(description["type"])
        self.demo_transport = transport
        self.census: dict[str, Any] = {}


@contextlib.contextmanager
def server_process(model: str, transport: str) -> Iterator[RemoteServer]:
    """A netserv echo server in a fresh interpreter, for the length of the block.

    A small process forks in a millisecond or two; the test process, with
    pytest and its plugins loaded, takes ten times longer. After the block,
    ``census`` holds what the server process still had open after it closed
    the server: new fds, threads, children.
    """
    process = subprocess.Popen([sys.executable, "-c", _SERVER_PROCESS, model, transport],
                               cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True)
    try:
        assert process.stdout is not None and process.stdin is not None
        server = RemoteServer(json.loads(process.stdout.readline()), transport)
        yield server
        process.stdin.write("stop\n")
        process.stdin.flush()
        server.census = json.loads(process.stdout.readline())
    finally:
        if process.stdin:
            process.stdin.close()
        if process.stdout:
            process.stdout.close()
        try:
            process.wait(CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


#: Run by :func:`resetting_client`: connect, send, then reset when told to.
_RESETTING_CLIENT = """
import socket, struct, sys, json
family, address = int(sys.argv[1]), json.loads(sys.argv[2])
sock = socket.socket(family, socket.SOCK_STREAM)
sock.connect(tuple(address) if isinstance(address, list) else address)
sock.sendall(b"abc")  # no newline: the handler waits for more
sys.stdin.readline()
# Linger on with a zero timeout: close() sends RST instead of FIN.
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.close()
"""


@contextlib.contextmanager
def resetting_client(server: Any) -> Iterator[Any]:
    """A client in another process that connects and sends a partial line;
    call the yielded function to make it reset the connection (RST).

    Another process, because a forking server's child would inherit a client
    socket of this process, and a close() here would then send nothing.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _RESETTING_CLIENT, str(int(server.address_family)),
         json.dumps(server.server_address)], stdin=subprocess.PIPE, text=True)

    def reset() -> None:
        assert process.stdin is not None
        process.stdin.write("reset\n")
        process.stdin.close()
        assert process.wait(CLIENT_TIMEOUT) == 0

    try:
        yield reset
    finally:
        if process.stdin and not process.stdin.closed:
            process.stdin.close()
        try:
            process.wait(CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- recording hooks ---------------------------------------------------------

class HookLog:
    """An append-only log of (process, thread, event) that forked children can write to.

    Lines go through a pipe, so a forked child's entries reach the parent.
    read() returns what has been written so far; call it after the server
    has been closed (so that every thread and child is done). Close with
    close() or use as a context manager.
    """

    def __init__(self) -> None:
        self._reader, self._writer = os.pipe()
        os.set_blocking(self._reader, False)
        self._entries: list[tuple[int, str, str]] = []
        self._pending = b""

    def add(self, event: str) -> None:
        line = f"{os.getpid()}\t{threading.current_thread().name}\t{event}\n"
        os.write(self._writer, line.encode())  # < PIPE_BUF: one atomic write

    def read(self) -> list[tuple[int, str, str]]:
        """Every entry so far, in the order written."""
        while True:
            try:
                chunk = os.read(self._reader, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self._pending += chunk
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            pid, thread, event = line.decode().split("\t", 2)
            self._entries.append((int(pid), thread, event))
        return list(self._entries)

    def wait_for(self, event: str, count: int, timeout: float = CLIENT_TIMEOUT) -> bool:
        """Block until ``event`` has been logged ``count`` times; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.events().count(event) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            select.select([self._reader], [], [], remaining)
        return True

    def events(self) -> list[str]:
        return [event for _pid, _thread, event in self.read()]

    def by_actor(self) -> list[list[str]]:
        """The events of each (process, thread), actors in order of first appearance."""
        actors: dict[tuple[int, str], list[str]] = {}
        for pid, thread, event in self.read():
            actors.setdefault((pid, thread), []).append(event)
        return list(actors.values())

    def close(self) -> None:
        os.close(self._reader)
        os.close(self._writer)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _logging(name: str) -> Any:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        log = self.hook_log if hasattr(self, "hook_log") else self.server.hook_log
        log.add(name)
        return getattr(super(self.recording_class, self), name)(*args, **kwargs)
    hook.__name__ = name
    return hook


def recording(log: HookLog, base: type, hooks: tuple[str, ...] = SERVER_HOOKS) -> type:
    """A subclass of ``base`` that logs each of ``hooks`` (those it has) to ``log``.

    Works for servers and handlers alike: a handler logs to its server's log.
    """
    namespace: dict[str, Any] = {name: _logging(name) for name in hooks if hasattr(base, name)}
    cls = type(f"Recording{base.__name__}", (base,), namespace)
    cls.recording_class = cls
    if hooks is SERVER_HOOKS:
        cls.hook_log = log
    return cls


def recording_server(log: HookLog, model: str, transport: str, impl: str,
                     handler: type, **attributes: Any) -> Any:
    """A bound server of (model, transport, impl) whose hooks, and handler's, log to ``log``."""
    server_cls = recording(log, server_class(model, transport, impl))
    for name, value in attributes.items():
        setattr(server_cls, name, value)
    handler_cls = recording(log, handler, HANDLER_HOOKS)
    return demo.bind(server_cls, transport, handler_cls)


def collapse(events: list[str], repeated: str = "service_actions") -> list[str]:
    """Collapse runs of ``repeated`` into one (their count depends on timing)."""
    out: list[str] = []
    for event in events:
        if not (event == repeated and out and out[-1] == repeated):
            out.append(event)
    return out


# -- the census (used by conftest.py) ---------------------------------------

def open_fds() -> dict[int, str]:
    """Open descriptors of this process -> what they point to."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the descriptor listdir itself used, closed already
    return fds


def child_processes() -> dict[int, str]:
    """Children of this process (any thread's) -> their state letter (Z = zombie)."""
    me = os.getpid()
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited while we looked
        # The fields after the command name, which is in parentheses and may
        # itself contain spaces or parentheses: state, ppid, ...
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == me:
            children[int(name)] = state
    return children
