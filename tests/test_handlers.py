"""Request handlers (netserv.handlers), each test run with the handler classes
of both modules on a server of the same module."""

from __future__ import annotations

import array
import io
import socket
import sys
import threading
import time
from typing import Any

import pytest

import netserv
import netserv.handlers

import support

pytestmark = pytest.mark.parametrize("impl", support.IMPLS)


def serve_one(impl: str, handler: type, transport: str = "tcp",
              send: bytes = b"", half_close: bool = True) -> tuple[bytes, Any]:
    """handle_request() once for a client that sends ``send``; return (reply, server)."""
    server = support.make("sync", transport, impl, handler=handler)
    server.seen = []
    server.errors = []
    server.handle_error = lambda request, address: server.errors.append(sys.exc_info()[0])
    with support.closing(server), support.client(server) as sock:
        if send:
            sock.sendall(send)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        server.handle_request()
        reply = support.recv_all(sock)
    return reply, server


# -- BaseRequestHandler ----------------------------------------------------------

def test_base_request_handler_sets_attributes_and_runs_finish_after_an_error(impl: str) -> None:
    mod = support.module(impl)

    class Fails(mod.BaseRequestHandler):  # type: ignore[name-defined]
        def setup(self) -> None:
            self.server.seen.append(("setup", self.request is not None,
                                     self.client_address == self.request.getpeername()))

        def handle(self) -> None:
            raise ValueError("in handle")

        def finish(self) -> None:
            self.server.seen.append(("finish",))

    _reply, server = serve_one(impl, Fails)
    assert server.seen == [("setup", True, True), ("finish",)]
    assert server.errors == [ValueError]


# -- StreamRequestHandler ---------------------------------------------------------

def test_stream_request_handler_wfile_is_unbuffered_buffered_io(impl: str) -> None:
    """wfile is a BufferedIOBase whose write() is on the wire at once: the
    handler waits for an answer to what it wrote, without flushing."""
    mod = support.module(impl)

    class PingPong(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            self.server.seen.append(isinstance(self.wfile, io.BufferedIOBase))
            self.server.seen.append(self.wfile.write(b"ping\n"))
            self.server.seen.append(self.wfile.write(memoryview(array.array("i", [1, 2]))))
            self.server.seen.append(self.rfile.readline())  # client answers the ping

    server = support.make("sync", "tcp", impl, handler=PingPong)
    server.seen = []
    with support.closing(server), support.client(server) as sock:
        loop = threading.Thread(target=server.handle_request)
        loop.start()
        try:
            reader = sock.makefile("rb")
            assert reader.readline() == b"ping\n"  # arrived before any flush
            sock.sendall(b"pong\n")
            reader.close()
        finally:
            loop.join()
    assert server.seen == [True, 5, 8, b"pong\n"]


@pytest.mark.parametrize("wbufsize, expected", [(0, b"abcRAW"), (1024, b"RAWabc")])
def test_stream_request_handler_wbufsize_buffers_until_finish(
        impl: str, wbufsize: int, expected: bytes) -> None:
    mod = support.module(impl)

    class Buffered(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            self.wfile.write(b"abc")  # held in the buffer if wbufsize > 0
            self.connection.sendall(b"RAW")  # goes around the buffer

    Buffered.wbufsize = wbufsize
    reply, _server = serve_one(impl, Buffered)
    assert reply == expected


@pytest.mark.parametrize("rbufsize, rest", [(-1, b""), (0, b"two\n")])
def test_stream_request_handler_rbufsize_controls_read_ahead(
        impl: str, rbufsize: int, rest: bytes) -> None:
    """A buffered rfile reads ahead of the line it returns; rbufsize=0 does not."""
    mod = support.module(impl)

    class ReadOneLine(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            line = self.rfile.readline()
            self.wfile.write(line + support.recv_all(self.connection))

    ReadOneLine.rbufsize = rbufsize
    reply, _server = serve_one(impl, ReadOneLine, send=b"one\ntwo\n")
    assert reply == b"one\n" + rest


def test_stream_request_handler_timeout_reclaims_a_silent_client(impl: str) -> None:
    mod = support.module(impl)

    class Patient(mod.StreamRequestHandler):  # type: ignore[name-defined]
        timeout = 0.05

        def handle(self) -> None:
            self.server.seen.append(self.connection.gettimeout())
            self.rfile.readline()

    _reply, server = serve_one(impl, Patient, half_close=False)
    assert server.seen == [0.05]
    assert server.errors == [TimeoutError]


@pytest.mark.parametrize("disable", [False, True])
def test_stream_request_handler_disable_nagle_sets_tcp_nodelay(impl: str, disable: bool) -> None:
    mod = support.module(impl)

    class Nagle(mod.StreamRequestHandler):  # type: ignore[name-defined]
        disable_nagle_algorithm = disable

        def handle(self) -> None:
            self.server.seen.append(
                bool(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)))

    _reply, server = serve_one(impl, Nagle)
    assert server.seen == [disable]


def test_stream_request_handler_finish_closes_files_not_the_socket(impl: str) -> None:
    mod = support.module(impl)

    class Check(mod.StreamRequestHandler):  # type: ignore[name-defined]
        def finish(self) -> None:
            super().finish()
            self.server.seen.append((self.rfile.closed, self.wfile.closed,
                                     self.connection.fileno() != -1))

    _reply, server = serve_one(impl, Check)
    assert server.seen == [(True, True, True)]


# -- StreamRequestHandler.request_deadline (netserv only) -----------------------------

#: A deadline far longer than any read in these tests needs on a loaded machine,
#: and far shorter than the clients' own timeout.
LONG_DEADLINE = 5.0


def netserv_only(impl: str) -> None:
    if impl != "netserv":
        pytest.skip("request_deadline is netserv's: the standard module has no such limit")


def recv_until_hung_up(sock: Any) -> bytes:
    """What the server sent before it closed, or reset (a server that closes with
    bytes of ours unread sends a reset, not an end of file)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(chunks)


def serve_one_bounded(impl: str, handler: type, send: bytes, gap: float = 0.0) -> tuple[
        bytes, Any, float]:
    """handle_request() in a thread for a client that sends ``send`` one line
    at a time, ``gap`` seconds apart, then waits without closing. Returns
    (reply, server, seconds handle_request took); fails, instead of hanging,
    if the server is still serving after LONG_DEADLINE."""
    server = support.make("sync", "tcp", impl, handler=handler)
    server.seen = []
    server.errors = []
    server.handle_error = lambda request, address: server.errors.append(sys.exc_info()[0])
    took: list[float] = []

    def serve() -> None:
        start = time.monotonic()
        server.handle_request()
        took.append(time.monotonic() - start)

    with support.closing(server), support.client(server) as sock:
        loop = threading.Thread(target=serve)
        loop.start()
        try:
            for line in send.splitlines(keepends=True):
                try:
                    sock.sendall(line)
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server has hung up already: what a deadline does
                if gap:
                    time.sleep(gap)  # the client's pace, not a wait for the server
            loop.join(LONG_DEADLINE)
            assert not loop.is_alive(), "the handler was never cut off"
            reply = recv_until_hung_up(sock)
        finally:
            sock.close()  # unblocks a handler that is still reading
            loop.join()
    return reply, server, took[0]


def test_request_deadline_cuts_off_a_client_silent_mid_line_without_a_timeout(
        impl: str) -> None:
    netserv_only(impl)

    class Deadline(netserv.StreamRequestHandler):
        request_deadline = 0.2  # and timeout stays None: only the deadline can fire

        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())

        def deadline_exceeded(self, error: Exception) -> None:
            self.server.seen.append(type(error))

    reply, server, took = serve_one_bounded(impl, Deadline, send=b"half a li")
    assert reply == b""
    assert server.seen == [netserv.handlers.RequestDeadlineExceeded]
    assert server.errors == []  # not a traceback through handle_error
    assert took >= 0.2
    assert issubclass(netserv.handlers.RequestDeadlineExceeded, TimeoutError)


def test_request_deadline_bounds_each_read_call_not_the_connection(impl: str) -> None:
    """Four lines 0.15 s apart (0.45 s in all) under a 0.3 s deadline: each
    readline() has its own deadline, so every line is served."""
    netserv_only(impl)

    class Lines(netserv.StreamRequestHandler):
        request_deadline = 0.3

        def handle(self) -> None:
            for _ in range(4):
                self.wfile.write(self.rfile.readline())

    lines = b"".join(b"line %d\n" % n for n in range(4))
    reply, server, took = serve_one_bounded(impl, Lines, send=lines, gap=0.15)
    assert reply == lines
    assert server.errors == []
    assert took > 0.3


def test_one_deadline_bounds_several_read_calls_together(impl: str) -> None:
    """The same four lines 0.15 s apart under a 0.3 s deadline, read inside
    rfile.one_deadline(): the block as a whole is cut off, not each line."""
    netserv_only(impl)

    class Head(netserv.StreamRequestHandler):
        request_deadline = 0.3

        def handle(self) -> None:
            with self.rfile.one_deadline():
                for _ in range(4):
                    self.wfile.write(self.rfile.readline())

        def deadline_exceeded(self, error: Exception) -> None:
            self.server.seen.append(type(error))

    lines = b"".join(b"line %d\n" % n for n in range(4))
    reply, server, took = serve_one_bounded(impl, Head, send=lines, gap=0.15)
    assert reply != lines and lines.startswith(reply)  # cut off before the last line
    assert server.seen == [netserv.handlers.RequestDeadlineExceeded]
    assert server.errors == []
    assert took >= 0.3


def test_request_deadline_keeps_a_shorter_timeout_as_the_standard_timeout_error(
        impl: str) -> None:
    """A per-read timeout shorter than the deadline fires as the standard
    TimeoutError, through handle_error."""
    netserv_only(impl)

    class Both(netserv.StreamRequestHandler):
        timeout = 0.1
        request_deadline = LONG_DEADLINE

        def handle(self) -> None:
            self.wfile.write(self.rfile.readline())
            self.rfile.readline()  # the client stays silent

    reply, server, _took = serve_one_bounded(impl, Both, send=b"one\n")
    assert reply == b"one\n"
    assert server.errors == [TimeoutError]  # exactly TimeoutError, not the deadline's


@pytest.mark.parametrize("timeout", [None, 3.0])
def test_request_deadline_puts_the_handler_timeout_back_after_each_read(
        impl: str, timeout: float | None) -> None:
    """While a read waits, the socket's timeout is the time left; afterwards it
    is the handler's again, so that writes behave as without a deadline."""
    netserv_only(impl)

    class Check(netserv.StreamRequestHandler):
        request_deadline = 1.0

        def handle(self) -> None:
            self.server.seen.append(self.connection.gettimeout())
            self.wfile.write(self.rfile.readline())
            self.server.seen.append(self.connection.gettimeout())

    Check.timeout = timeout
    reply, server, _took = serve_one_bounded(impl, Check, send=b"one\n")
    assert reply == b"one\n"
    assert server.seen == [timeout, timeout]


def test_request_deadline_with_rbufsize_0_still_reads_no_further_than_asked(
        impl: str) -> None:
    netserv_only(impl)

    class ReadOneLine(netserv.StreamRequestHandler):
        rbufsize = 0
        request_deadline = LONG_DEADLINE

        def handle(self) -> None:
            line = self.rfile.readline()
            self.wfile.write(line + support.recv_all(self.connection))

    reply, _server = serve_one(impl, ReadOneLine, send=b"one\ntwo\n")
    assert reply == b"one\ntwo\n"


# -- DatagramRequestHandler ---------------------------------------------------------

@pytest.mark.parametrize("transport", ["udp", "unix-dgram"])
def test_datagram_request_handler_sends_exactly_one_reply(impl: str, transport: str) -> None:
    """Two writes make one datagram; no writes still make one (empty) datagram."""
    mod = support.module(impl)

    class Replies(mod.DatagramRequestHandler):  # type: ignore[name-defined]
        def handle(self) -> None:
            self.server.seen.append((self.packet, self.rfile.read(),
                                     self.socket is self.server.socket))
            if self.packet == b"two writes":
                self.wfile.write(b"a")
                self.wfile.write(b"b")
            elif self.packet == b"last":
                self.wfile.write(b"c")

    server = support.make("sync", transport, impl, handler=Replies)
    server.seen = []
    with support.closing(server), support.client(server) as sock:
        replies = []
        for message in (b"two writes", b"no write", b"last"):
            sock.send(message)
            server.handle_request()
        for _ in range(3):
            replies.append(sock.recv(100))
    # The third datagram read is the third reply: nothing extra came between.
    assert replies == [b"ab", b"", b"c"]
    assert server.seen == [(b"two writes", b"two writes", True), (b"no write", b"no write", True),
                           (b"last", b"last", True)]
