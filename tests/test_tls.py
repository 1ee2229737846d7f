"""TLS on every model (netserv.tls, netserv.handshake): the handshake never in accept().

Each test runs a TLS echo server of one model in the background and proves
one thing about where its handshake runs: a client that connects and says
nothing does not stop another client's request; plain text sent to the TLS
port, a client that resets mid-handshake and one that never finishes are
each one line on stderr, and the server serves on; a thousand handshakes
leave no descriptor or thread behind. The standard module's pattern (a
listening socket wrapped with handshake-on-connect) is run too, to show that
the same silent client does stop it: the tests can see the wedge.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import netserv
from netserv import tls
from netserv.eventdriven import EventDrivenTCPServer, LineEchoHandler
from netserv.lab import demo
from netserv.lab.certs import CourseCA

import support

pytest.importorskip("trustme")

#: The forking models fork from this process while the serve loop runs in a
#: thread: the warning about it is expected.
pytestmark = support.expects_fork_with_threads_warning

#: Seconds a client of these tests waits for anything before it fails.
WAIT = support.CLIENT_TIMEOUT

#: A client timeout short enough to show a deaf server quickly, long enough
#: that a server that is not deaf always answers within it on a loaded machine.
DEAF_TIMEOUT = 2.0

#: Handshakes of the leak test: enough that a descriptor or thread lost per
#: handshake shows, in seconds of CPU on loopback.
MANY = 1000


class EchoHandler(netserv.StreamRequestHandler):
    """Send every line back (the blocking models' handler)."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


#: The models whose requests run in this process (a thread, a pool, the loop).
MODELS = ["threading", "pool", "eventdriven"]
#: The models whose requests run in a forked process. A child forked after
#: this process opened a client socket holds a copy of that client's end: the
#: echo handler's child would never read end-of-file and server_close() would
#: wait for it forever. So on "forking" (a child per connection, forked after
#: the client connected) every client runs in another process
#: (:func:`remote_exchange`, :func:`remote_client`); on "prefork" (workers
#: forked once, when serving starts) :func:`tls_server` waits until every
#: worker is forked before the test opens a socket.
FORKED_MODELS = ["forking", "prefork"] if hasattr(os, "fork") else []
ALL_MODELS = MODELS + FORKED_MODELS
TRANSPORTS = ["tcp", "unix"] if hasattr(socket, "AF_UNIX") else ["tcp"]


def server_class(model: str, transport: str) -> type:
    """netserv's TLS server of this model on this transport."""
    suffix = "TCPServer" if transport == "tcp" else "UnixStreamServer"
    names = {"threading": "TLSThreading", "pool": "TLSThreadPool",
             "eventdriven": "TLSEventDriven", "forking": "TLSForking",
             "prefork": "TLSPreFork"}
    cls: type = getattr(tls, names[model] + suffix)
    return cls


@pytest.fixture(scope="module")
def ca() -> CourseCA:
    return CourseCA()


@contextlib.contextmanager
def tls_server(ca: CourseCA, model: str, transport: str, **attributes: Any) -> Iterator[Any]:
    """A TLS echo server of ``model`` serving in the background for the block."""
    base = server_class(model, transport)
    cls = type(base.__name__, (base,), {"request_queue_size": 64, **attributes})
    handler = LineEchoHandler if model == "eventdriven" else EchoHandler
    with support.short_tempdir() as folder:
        address: Any = ("127.0.0.1", 0) if transport == "tcp" else os.path.join(folder, "s")
        server = cls(address, handler, context=ca.server_context())
        with support.serving(server):
            if model == "prefork":  # no client socket before every worker is forked
                deadline = time.monotonic() + WAIT
                while len(server.worker_pids) < server.workers:
                    assert time.monotonic() < deadline, "the workers were not forked"
                    time.sleep(0.01)  # polling the supervisor: no event crosses processes
            yield server


def plain_client(server: Any, timeout: float = WAIT) -> socket.socket:
    """A connected plain socket (TCP or Unix) to the server."""
    family = socket.AF_INET if isinstance(server.server_address, tuple) else socket.AF_UNIX
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(server.server_address)
    except BaseException:
        sock.close()
        raise
    return sock


def tls_echo(ca: CourseCA, server: Any, timeout: float = WAIT,
             context: ssl.SSLContext | None = None) -> bytes:
    """One TLS connection: handshake, send a line, read it back."""
    context = context or ca.client_context()
    with plain_client(server, timeout) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as sock:
            sock.sendall(b"hello\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(100)
                if not chunk:
                    break
                reply += chunk
            return reply


def client_hello(ca: CourseCA) -> bytes:
    """The bytes of a real ClientHello, made without a socket (MemoryBIO)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ca.client_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


#: Run by :func:`remote_client`: connect, send the bytes given in hex, say so,
#: then reset the connection when told to (or when stdin closes).
_REMOTE_CLIENT = """
import socket, struct, sys, json
family, address = int(sys.argv[1]), json.loads(sys.argv[2])
sock = socket.socket(family, socket.SOCK_STREAM)
sock.connect(tuple(address) if isinstance(address, list) else address)
sock.sendall(bytes.fromhex(sys.argv[3]))
print("connected", flush=True)
sys.stdin.readline()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
sock.close()
"""


@contextlib.contextmanager
def remote_client(server: Any, payload: bytes = b"") -> Iterator[subprocess.Popen[str]]:
    """A client in another process, connected, that sent ``payload`` and waits;
    it resets the connection (RST) when the block ends.

    Another process, because a forking server's child inherits every socket
    of this process: a client's close() here would then reach nobody.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", _REMOTE_CLIENT, str(int(server.address_family)),
         json.dumps(server.server_address), payload.hex()],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdin is not None and process.stdout is not None
    try:
        assert process.stdout.readline() == "connected\n"
        yield process
    finally:
        # A line, not end-of-file: a forking server's children hold copies
        # of this pipe too, so closing it here would not end it.
        with contextlib.suppress(BrokenPipeError):
            process.stdin.write("reset\n")
            process.stdin.flush()
        process.stdin.close()
        try:
            process.wait(WAIT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


#: Run by :func:`remote_exchange`: one client in another process. "echo":
#: TLS, send a line, read it back; "plain": send an HTTP request in plain text;
#: "silent": send nothing. Then read until the server closes; print the reply
#: and the seconds from connect to close (or the error) as JSON.
_REMOTE_EXCHANGE = """
import contextlib, json, socket, ssl, sys, time
mode, family, address = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
timeout, cadata = float(sys.argv[4]), sys.argv[5]
sock = socket.socket(family, socket.SOCK_STREAM)
sock.settimeout(timeout)
try:
    sock.connect(tuple(address) if isinstance(address, list) else address)
    started = time.monotonic()
    if mode == "echo":
        context = ssl.create_default_context(cadata=cadata)
        sock = context.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(b"hello\\n")
    elif mode == "plain":
        sock.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while not (mode == "echo" and got.endswith(b"\\n")):
            chunk = sock.recv(4096)
            if not chunk:
                break
            got += chunk
    result = {"reply": got.hex(), "waited": time.monotonic() - started}
except OSError as error:
    result = {"error": f"{type(error).__name__}: {error}"}
finally:
    sock.close()
print(json.dumps(result), flush=True)
"""

#: Seconds a client process may take to start, on top of its socket timeout.
PROCESS_START = 30.0


def remote_exchange(ca: CourseCA, server: Any, mode: str,
                    timeout: float = WAIT) -> tuple[bytes, float]:
    """One client of ``mode`` (see _REMOTE_EXCHANGE) in another process.

    Returns (what the server sent, seconds from connect to close); a socket
    error in the client (a timeout) fails the test. The client's own socket
    timeout bounds what it measures: the interpreter's start is not counted.
    """
    done = subprocess.run(
        [sys.executable, "-c", _REMOTE_EXCHANGE, mode, str(int(server.address_family)),
         json.dumps(server.server_address), str(timeout), ca.ca_pem().decode()],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, check=True,
        timeout=timeout + PROCESS_START)
    result = json.loads(done.stdout)
    assert "error" not in result, f"the {mode} client failed: {result['error']}"
    return bytes.fromhex(result["reply"]), float(result["waited"])


def echo(ca: CourseCA, server: Any, model: str, timeout: float = WAIT) -> bytes:
    """One TLS echo, from this process or, on the forking model, another."""
    if model == "forking":
        return remote_exchange(ca, server, "echo", timeout)[0]
    return tls_echo(ca, server, timeout)


def wait_closed(sock: socket.socket) -> bytes:
    """Read until the server closes (EOF or reset); return what came."""
    got = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(4096):
            got += chunk
    return got


def failure_lines(capfd: pytest.CaptureFixture[str], count: int) -> list[str]:
    """Wait (bounded) until ``count`` handshake failures were reported; return stderr's lines."""
    deadline = time.monotonic() + WAIT
    lines: list[str] = []
    while time.monotonic() < deadline:
        lines += capfd.readouterr().err.splitlines()
        if sum("TLS handshake" in line for line in lines) >= count:
            break
        time.sleep(0.01)  # polling a capture: there is no event to wait on
    return lines


# -- the silent client ---------------------------------------------------------

@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("model", ALL_MODELS)
def test_silent_client_does_not_stop_another(ca: CourseCA, model: str, transport: str) -> None:
    # A handshake deadline longer than the clients' patience: if the silent
    # client held the accept loop, the second client would time out. (On
    # pre-fork each worker accepts and serves in the same thread: the silent
    # client holds one worker wherever its handshake runs, and the other
    # answers. There this shows that a silent client costs one worker, not
    # the server; the tests below show where the handshake runs.)
    with tls_server(ca, model, transport, handshake_timeout=2 * DEAF_TIMEOUT) as server:
        with remote_client(server) as silent:
            assert echo(ca, server, model, timeout=DEAF_TIMEOUT) == b"hello\n"
            assert echo(ca, server, model, timeout=DEAF_TIMEOUT) == b"hello\n"
            assert silent.poll() is None  # still connected, still silent


def test_standard_pattern_is_deaf_with_one_silent_client(ca: CourseCA) -> None:
    """The control: the standard module, listening socket wrapped, goes deaf."""
    context = ca.server_context()

    class WrappedListener(socketserver.ThreadingTCPServer):
        daemon_threads = True

        def server_activate(self) -> None:
            super().server_activate()
            self.socket = context.wrap_socket(self.socket, server_side=True)

    server = WrappedListener(("127.0.0.1", 0), EchoHandler)
    with support.serving(server):
        assert tls_echo(ca, server) == b"hello\n"
        with remote_client(server):
            with pytest.raises(TimeoutError):
                tls_echo(ca, server, timeout=DEAF_TIMEOUT)
        # The silent client reset: the loop's accept() fails, and it serves again.
        assert tls_echo(ca, server) == b"hello\n"


# -- failed handshakes: one line, and the server serves on ------------------------------

@pytest.mark.parametrize("model", ALL_MODELS)
def test_plain_text_to_tls_port_is_one_line(ca: CourseCA, model: str,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    # A forked child writes its line to the same stderr, which capfd reads.
    with tls_server(ca, model, "tcp") as server:
        if model == "forking":
            reply = remote_exchange(ca, server, "plain")[0]
        else:
            with plain_client(server) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                reply = wait_closed(sock)
        assert not reply.startswith(b"HTTP")
        assert echo(ca, server, model) == b"hello\n"
        lines = failure_lines(capfd, 1)
    assert sum("TLS handshake" in line for line in lines) == 1, lines
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.parametrize("model", ALL_MODELS)
def test_reset_mid_handshake_is_one_line(ca: CourseCA, model: str,
                                         capfd: pytest.CaptureFixture[str]) -> None:
    hello = client_hello(ca)
    with tls_server(ca, model, "tcp") as server:
        with remote_client(server, hello[:len(hello) // 2]):
            # Half a ClientHello sent. Another client served after it means the
            # loop has accepted it (accept() is first come, first served): the
            # reset at the block's end then comes mid-handshake, not before
            # accept(), which would drop it silently as any server does.
            assert echo(ca, server, model) == b"hello\n"
        lines = failure_lines(capfd, 1)
    assert sum("TLS handshake" in line for line in lines) == 1, lines
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.parametrize("model", ALL_MODELS)
def test_handshake_times_out(ca: CourseCA, model: str,
                             capfd: pytest.CaptureFixture[str]) -> None:
    deadline = 0.3  # seconds: short, so that the test is quick
    with tls_server(ca, model, "tcp", handshake_timeout=deadline) as server:
        if model == "forking":
            reply, waited = remote_exchange(ca, server, "silent")
        else:
            with plain_client(server) as silent:
                started = time.monotonic()
                reply = wait_closed(silent)
                waited = time.monotonic() - started
        assert reply == b""  # the server gave up and closed
        lines = failure_lines(capfd, 1)
        assert echo(ca, server, model) == b"hello\n"
    assert waited >= deadline * 0.9  # not closed before its deadline (timer granularity)
    assert any("TLS handshake" in line and "Timeout" in line for line in lines), lines


def test_trickling_client_is_bounded_by_the_deadline(ca: CourseCA) -> None:
    """The deadline covers the whole handshake, not one read: a byte at a time
    resets no timer."""
    hello = client_hello(ca)
    deadline = 0.5
    with tls_server(ca, "threading", "tcp", handshake_timeout=deadline) as server:
        with plain_client(server) as sock:
            stop = time.monotonic() + WAIT
            closed = False
            for byte in hello[:-1]:  # never the last byte
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                if time.monotonic() > stop:
                    break
                time.sleep(deadline / 10)  # the trickle itself, not a synchronisation
            if not closed:
                assert wait_closed(sock) == b""


# -- many handshakes: nothing left behind -------------------------------------------------

def census() -> tuple[int, int]:
    """(open descriptors of this process, running threads)."""
    return len(support.open_fds()), threading.active_count()


def leq(now: tuple[int, int], before: tuple[int, int]) -> bool:
    return now[0] <= before[0] and now[1] <= before[1]


#: Only the models that serve in this process: on forking and pre-fork the
#: connections' descriptors and threads live in other processes (a child per
#: connection, or the workers), which this census cannot see.
@pytest.mark.parametrize("model", MODELS)
def test_many_handshakes_leave_nothing_behind(ca: CourseCA, model: str) -> None:
    context = ca.client_context()
    with tls_server(ca, model, "tcp") as server:
        assert tls_echo(ca, server, context=context) == b"hello\n"  # the pool starts its threads
        before = census()
        started = time.monotonic()
        for _ in range(MANY):
            assert tls_echo(ca, server, context=context) == b"hello\n"
        # The last request's thread may still be closing its socket: wait,
        # bounded. ``before`` may count the first request's thread, still
        # ending: "no more than before" is the claim; a leak per handshake
        # would be a thousand more.
        deadline = time.monotonic() + WAIT
        while not leq(census(), before) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert leq(census(), before), (before, census(), time.monotonic() - started)


# -- the event-driven model: the handshake is a row of the table -------------------------

def test_eventdriven_counts_a_handshake_in_its_table(ca: CourseCA) -> None:
    with tls_server(ca, "eventdriven", "tcp", handshake_timeout=60.0) as server:
        with plain_client(server) as silent:
            silent.sendall(b"\x16")  # one byte of a record: the loop has seen it
            deadline = time.monotonic() + WAIT
            while not server.state_table() and time.monotonic() < deadline:
                time.sleep(0.01)
            rows = server.state_table()
            assert len(rows) == 1
            assert isinstance(server.connections[rows[0]["fd"]].handler, tls.Handshaking)
            assert tls_echo(ca, server) == b"hello\n"


def test_context_must_be_server_side(ca: CourseCA) -> None:
    with pytest.raises(TypeError, match="server-side"):
        tls.TLSThreadingTCPServer(("127.0.0.1", 0), EchoHandler, context=ca.client_context())
    with pytest.raises(TypeError, match="server-side"):
        tls.TLSEventDrivenTCPServer(("127.0.0.1", 0), LineEchoHandler,
                                    context=None)  # type: ignore[arg-type]


def test_event_driven_server_without_tls_is_unchanged() -> None:
    server = demo.bind(EventDrivenTCPServer, "tcp", LineEchoHandler)
    with support.serving(server):
        assert support.exchange(server) == b"hello\n"
