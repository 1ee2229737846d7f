"""Checks for exercise 12 (see README.md): a TLS line echo that a silent client cannot stop.

Each check starts your server on 127.0.0.1 (port 0) with a throw-away
certificate (trustme: a certificate authority made in memory for the test)
and looks at what clients see: a TLS client that trusts that authority, a
plain TCP client that sends nothing or plain text, a client that hangs up in
the middle of its handshake. Your server's handle_handshake_error() is
watched (it still runs) so that a check knows when a failure was reported;
what it wrote to stderr is read back.
"""

from __future__ import annotations

import contextlib
import gc
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

#: A handshake deadline no check reaches: the silent client stays connected
#: while another client is served.
LONG_DEADLINE = 60.0
#: A handshake deadline the checks wait out.
SHORT_DEADLINE = 0.3
#: How long a client pauses between two lines after its handshake: well past
#: SHORT_DEADLINE, so that a deadline left on the connection is seen.
PAUSE = 4 * SHORT_DEADLINE
#: Connections of each kind (echo, plain text, hang-up) in the leak check.
ROUNDS = 10
#: The name the certificate is made for, and the address every client dials.
HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context): a fresh certificate authority for this module."""
    trustme = pytest.importorskip("trustme", reason="pip install -e '.[test]' (trustme)")
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(HOST, "localhost").configure_cert(server)
    client = ssl.create_default_context()
    authority.configure_trust(client)
    return server, client


@contextlib.contextmanager
def tls_client(address: Any, context: ssl.SSLContext, timeout: float) -> Iterator[ssl.SSLSocket]:
    """A TLS connection to *address*, its handshake done (within *timeout*)."""
    sock = socket.create_connection(address, timeout=timeout)
    try:
        tls = context.wrap_socket(sock, server_hostname=HOST)
    except BaseException:
        sock.close()
        raise
    with tls:
        yield tls


def read_line(sock: socket.socket) -> bytes:
    """Bytes up to and including the next newline (or up to end of file)."""
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return line


def echo(address: Any, context: ssl.SSLContext, timeout: float) -> None:
    """One TLS client, one line, its echo: or a failed assert that says what went wrong."""
    try:
        with tls_client(address, context, timeout) as tls:
            tls.sendall(b"ping\n")
            assert read_line(tls) == b"ping\n", "the line was not echoed back"
    except TimeoutError:
        pytest.fail(f"a TLS client got no answer within {timeout} s: is the serving loop "
                    "waiting for another client's handshake?", pytrace=False)


def dropped(sock: socket.socket) -> bool:
    """True once the server closed the connection (end of file or reset); False on timeout."""
    try:
        while sock.recv(4096):
            pass  # a TLS alert the server sends before it closes is allowed
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return True


def watch_failures(server: Any) -> queue.Queue[tuple[Any, BaseException]]:
    """Record each call of server.handle_handshake_error() (which still runs)."""
    calls: queue.Queue[tuple[Any, BaseException]] = queue.Queue()
    original = server.handle_handshake_error

    def handle_handshake_error(request: Any, client_address: Any, error: BaseException) -> None:
        try:
            original(request, client_address, error)
        finally:
            calls.put((client_address, error))

    server.handle_handshake_error = handle_handshake_error
    return calls


def reported(calls: queue.Queue[tuple[Any, BaseException]], timeout: float,
             why: str) -> tuple[Any, BaseException]:
    """The next reported failure, or a failed check."""
    try:
        return calls.get(timeout=timeout)
    except queue.Empty:
        pytest.fail(f"{why}: handle_handshake_error() was not called within {timeout} s",
                    pytrace=False)


def one_line_about(capsys: pytest.CaptureFixture[str], port: int, why: str) -> None:
    """stderr holds exactly one line, naming the client's port, and no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, f"{why}: report it in one line, not with a traceback:\n{err}"
    lines = err.splitlines()
    assert len(lines) == 1, f"{why}: expected one line on stderr, got {len(lines)}:\n{err}"
    assert str(port) in lines[0], (
        f"{why}: the line should name the client's address (port {port}): {lines[0]!r}")


def test_echo_over_tls(exercise, serve, contexts, client_timeout):
    server_context, client_context = contexts
    with serve(exercise.make_server(server_context)) as server, \
            tls_client(server.server_address, client_context, client_timeout) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        tls.sendall(b"hello\n")
        assert read_line(tls) == b"hello\n"
        tls.sendall(b"in two")
        tls.sendall(b" pieces\r\nand a second line\n")
        assert read_line(tls) == b"in two pieces\r\n"
        assert read_line(tls) == b"and a second line\n"


def test_a_silent_client_does_not_stop_the_others(exercise, serve, contexts, client_timeout):
    server_context, client_context = contexts
    server = exercise.make_server(server_context, handshake_timeout=LONG_DEADLINE)
    with serve(server), socket.create_connection(server.server_address, timeout=client_timeout):
        # Connected over TCP, silent: it never sends its ClientHello.
        echo(server.server_address, client_context, client_timeout)
        echo(server.server_address, client_context, client_timeout)


def test_plain_text_is_dropped_reported_and_the_server_serves_on(
        exercise, serve, contexts, client_timeout, capsys):
    server_context, client_context = contexts
    server = exercise.make_server(server_context)
    calls = watch_failures(server)
    with serve(server):
        with socket.create_connection(server.server_address, timeout=client_timeout) as plain:
            plain.sendall(b"hello, plain text\r\n")
            assert dropped(plain), "a client that speaks plain text to a TLS port is dropped"
            port = plain.getsockname()[1]
        address, error = reported(calls, client_timeout, "plain text instead of a handshake")
        assert isinstance(error, OSError) and address[1] == port
        one_line_about(capsys, port, "a plain-text client")
        echo(server.server_address, client_context, client_timeout)


def test_a_handshake_past_its_deadline_is_dropped(exercise, serve, contexts, client_timeout,
                                                 capsys):
    server_context, client_context = contexts
    server = exercise.make_server(server_context, handshake_timeout=SHORT_DEADLINE)
    calls = watch_failures(server)
    with serve(server):
        with socket.create_connection(server.server_address, timeout=client_timeout) as silent:
            port = silent.getsockname()[1]
            assert dropped(silent), (
                f"a client silent in its handshake for longer than handshake_timeout "
                f"({SHORT_DEADLINE} s) is dropped")
        address, error = reported(calls, client_timeout, "a handshake past its deadline")
        assert isinstance(error, OSError) and address[1] == port
        one_line_about(capsys, port, "a handshake past its deadline")
        echo(server.server_address, client_context, client_timeout)


def client_hello(context: ssl.SSLContext) -> bytes:
    """The first bytes a TLS client sends: its ClientHello record."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=HOST)
    with contextlib.suppress(ssl.SSLWantReadError):  # it waits for the ServerHello
        client.do_handshake()
    return outgoing.read()


def test_a_client_that_hangs_up_mid_handshake(exercise, serve, contexts, client_timeout, capsys):
    server_context, client_context = contexts
    hello = client_hello(client_context)
    server = exercise.make_server(server_context)
    calls = watch_failures(server)
    with serve(server):
        with socket.create_connection(server.server_address, timeout=client_timeout) as half:
            half.sendall(hello[:len(hello) // 2])
            half.shutdown(socket.SHUT_WR)  # and nothing more: the server sees end of file
            assert dropped(half)
            port = half.getsockname()[1]
        address, error = reported(calls, client_timeout, "a client gone in mid-handshake")
        assert isinstance(error, OSError) and address[1] == port
        one_line_about(capsys, port, "a client gone in mid-handshake")
        echo(server.server_address, client_context, client_timeout)


def test_the_deadline_ends_with_the_handshake(exercise, serve, contexts, client_timeout):
    server_context, client_context = contexts
    server = exercise.make_server(server_context, handshake_timeout=SHORT_DEADLINE)
    with serve(server), tls_client(server.server_address, client_context, client_timeout) as tls:
        tls.sendall(b"first\n")
        assert read_line(tls) == b"first\n"
        time.sleep(PAUSE)  # the client thinks; a deadline is for the handshake only
        try:
            tls.sendall(b"second\n")
            second = read_line(tls)
        except ConnectionError:
            second = b""
        assert second == b"second\n", (
            f"a client that paused {PAUSE} s after its handshake (handshake_timeout "
            f"{SHORT_DEADLINE} s) was dropped: set the socket's timeout back after the handshake")


def open_descriptors() -> int:
    """How many file descriptors this process holds."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return len(os.listdir(folder))
    pytest.skip("no /proc/self/fd or /dev/fd here to count descriptors")


def test_nothing_is_left_behind(exercise, serve, contexts, client_timeout, capsys):
    server_context, client_context = contexts
    hello = client_hello(client_context)
    gc.collect()  # what earlier checks left for the collector is not this server's
    descriptors, threads = open_descriptors(), threading.active_count()
    server = exercise.make_server(server_context, handshake_timeout=SHORT_DEADLINE)
    calls = watch_failures(server)
    with serve(server):
        for _ in range(ROUNDS):
            echo(server.server_address, client_context, client_timeout)
            for first in (b"plain text\n", hello[:len(hello) // 2]):
                with socket.create_connection(server.server_address,
                                              timeout=client_timeout) as sock:
                    sock.sendall(first)
                    with contextlib.suppress(OSError):  # plain text: maybe dropped already
                        sock.shutdown(socket.SHUT_WR)
                    assert dropped(sock)
                reported(calls, client_timeout, "a failed handshake")
    capsys.readouterr()
    assert calls.empty(), "one report per failed handshake"
    assert threading.active_count() <= threads, (
        "threads are still running after server_close(): do not make them daemon threads")
    assert open_descriptors() <= descriptors, (
        f"descriptors left open after {3 * ROUNDS} connections were served and closed")
