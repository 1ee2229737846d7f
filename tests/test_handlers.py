"""Request handlers (netserv.handlers), each test run with the handler classes
of both modules on a server of the same module."""

from __future__ import annotations

import array
import io
import socket
import sys
import threading
from typing import Any

import pytest

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
