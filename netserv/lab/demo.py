"""Ready-made echo servers and clients for demos, notebooks, tests and benchmarks.

Theory of operation
-------------------
Every part of the course needs the same few things: "a line-echo server of
concurrency model M over transport T, from netserv or from the standard
module", "run it in a thread for the length of a ``with`` block", and "a
client socket for it". This module builds them by name, so that a notebook,
the trace command and the load generator all talk about the same servers.

Names:

* models: ``sync`` (TCPServer, ...), ``threading``, ``forking``, ``pool``
  (netserv.pool) and ``select`` (netserv.eventdriven); the last two exist
  only in netserv.
* transports: ``tcp``, ``udp``, ``unix`` (a Unix stream socket) and
  ``unix-dgram``.
* impl: ``netserv`` or ``stdlib`` (the standard socketserver module).

Every server binds to 127.0.0.1 on port 0 (the kernel picks a free port), or
to a socket file in a fresh temporary directory; :func:`running` removes that
directory when the block ends. Nothing here listens on other interfaces.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from ..handlers import DatagramRequestHandler, StreamRequestHandler

__all__ = ["MODELS", "TRANSPORTS", "IMPLS", "LineEchoHandler", "DatagramEchoHandler",
           "server_class", "make_server", "bind", "running", "open_client", "echo_once"]

LOOPBACK = "127.0.0.1"

#: Concurrency model -> class-name prefix of its combined servers.
MODELS = {"sync": "", "threading": "Threading", "forking": "Forking",
          "pool": "ThreadPool", "select": "EventDriven"}
#: Module that defines each model's combined classes in netserv.
_MODEL_MODULES = {"pool": "netserv.pool", "select": "netserv.eventdriven"}
#: Transport -> class-name suffix.
TRANSPORTS = {"tcp": "TCPServer", "udp": "UDPServer",
              "unix": "UnixStreamServer", "unix-dgram": "UnixDatagramServer"}
IMPLS = ("netserv", "stdlib")

#: Seconds a demo client waits for a reply before giving up: long enough for
#: a loaded 2-core machine, short enough that a hung server fails a test.
CLIENT_TIMEOUT = 10.0


class LineEchoHandler(StreamRequestHandler):
    """Send every line back as it arrives, until the client closes."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


class DatagramEchoHandler(DatagramRequestHandler):
    """Send every datagram back."""

    def handle(self) -> None:
        self.wfile.write(self.packet)


def is_datagram(transport: str) -> bool:
    return transport in ("udp", "unix-dgram")


def server_class(model: str = "sync", transport: str = "tcp", impl: str = "netserv") -> type:
    """Return the combined server class, e.g. ("threading", "tcp") -> ThreadingTCPServer."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; choose from {', '.join(TRANSPORTS)}")
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; choose from {', '.join(IMPLS)}")
    name = MODELS[model] + TRANSPORTS[transport]
    if impl == "stdlib":
        module: Any = socketserver
    else:
        module = importlib.import_module(_MODEL_MODULES.get(model, "netserv"))
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"{impl} has no {name} (model {model!r} over {transport!r}) "
                         f"on this system") from None


def default_handler(model: str, transport: str) -> type:
    """The echo handler that fits a model and transport."""
    if model == "select":
        return importlib.import_module("netserv.eventdriven").LineEchoHandler
    return DatagramEchoHandler if is_datagram(transport) else LineEchoHandler


def make_server(model: str = "sync", transport: str = "tcp", impl: str = "netserv",
                handler: type | None = None, **attributes: Any) -> Any:
    """Create and bind an echo server (or one with your handler) on loopback.

    ``attributes`` are set on the new class before binding, so class
    variables such as ``request_queue_size``, ``daemon_threads`` or
    ``allow_reuse_address`` take effect. A Unix server gets a socket file in
    a new temporary directory (``server.demo_tmpdir``), removed by
    :func:`running` or :func:`cleanup`.
    """
    cls = server_class(model, transport, impl)
    if attributes:
        cls = type(cls.__name__, (cls,), attributes)
    return bind(cls, transport, handler or default_handler(model, transport))


def bind(cls: type, transport: str, handler: type) -> Any:
    """Create a ``cls`` server for ``handler`` on loopback port 0, or on a
    socket file in a new temporary directory for a Unix transport.

    The directory is removed again if the constructor fails, and otherwise
    by :func:`cleanup` (``server.demo_tmpdir``).
    """
    tmpdir = None
    if transport.startswith("unix"):
        tmpdir = tempfile.mkdtemp(prefix="netserv-")
        address: Any = os.path.join(tmpdir, "server.sock")
    else:
        address = (LOOPBACK, 0)
    try:
        server = cls(address, handler)
    except BaseException:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    server.demo_tmpdir = tmpdir
    server.demo_transport = transport
    return server


def cleanup(server: Any) -> None:
    """Close the server and remove its temporary directory, if any."""
    server.server_close()
    tmpdir = getattr(server, "demo_tmpdir", None)
    if tmpdir:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextlib.contextmanager
def running(server: Any, poll_interval: float = 0.5) -> Iterator[Any]:
    """Serve in a background thread for the length of the block, then clean up.

    The socket is listening (or bound) before the block starts, so clients
    may connect at once: connections wait in the backlog until the loop
    accepts them. On exit: shutdown(), join the loop thread, server_close(),
    remove the temporary directory.
    """
    thread = threading.Thread(target=server.serve_forever, args=(poll_interval,),
                              name=f"{type(server).__name__}-loop", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        cleanup(server)


@contextlib.contextmanager
def open_client(server: Any, timeout: float = CLIENT_TIMEOUT) -> Iterator[socket.socket]:
    """A client socket connected to ``server``, closed at the end of the block.

    A Unix datagram client is bound to its own socket file (the server needs
    an address to reply to), removed at the end.
    """
    transport = getattr(server, "demo_transport", None) or _transport_of(server)
    sock = socket.socket(server.address_family, server.socket_type)
    tmpdir = None
    try:
        sock.settimeout(timeout)
        if transport == "unix-dgram":
            tmpdir = tempfile.mkdtemp(prefix="netserv-client-")
            sock.bind(os.path.join(tmpdir, "client.sock"))
        sock.connect(server.server_address)
        yield sock
    finally:
        sock.close()
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _transport_of(server: Any) -> str:
    unix = getattr(socket, "AF_UNIX", None)
    datagram = server.socket_type == socket.SOCK_DGRAM
    if server.address_family == unix:
        return "unix-dgram" if datagram else "unix"
    return "udp" if datagram else "tcp"


def echo_once(server: Any, message: bytes = b"hello\n", timeout: float = CLIENT_TIMEOUT) -> bytes:
    """Send one message to an echo server and return the reply.

    For a stream the client half-closes after sending (so a forking server's
    child sees end-of-file even though it inherited this socket) and reads
    until the server closes.
    """
    with open_client(server, timeout) as sock:
        if message or sock.type == socket.SOCK_DGRAM:
            # An empty sendall() on a stream whose peer already closed fails
            # with EPIPE, and sends nothing anyway; an empty datagram is real.
            sock.sendall(message)
        if sock.type == socket.SOCK_DGRAM:
            return sock.recv(65536)
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed first (ENOTCONN): its reply is still readable
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)
