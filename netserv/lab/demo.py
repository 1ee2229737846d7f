"""Ready-made echo servers and clients for demos, notebooks, tests and benchmarks.

Theory of operation
-------------------
Every part of the course needs the same few things: "a line-echo server of
concurrency model M over transport T, from netserv or from the standard
module", "run it in a thread for the length of a ``with`` block", and "a
client socket for it". This module builds them by name, so that a notebook,
the trace command and the load generator all talk about the same servers.

The one registry of names (bench, load, serve, trace and the tests read it
from here):

* models (:data:`MODELS`, model -> class-name prefix): ``sync``
  (TCPServer, ...), ``threading``, ``forking``, ``pool`` (netserv.pool),
  ``select`` (netserv.eventdriven) and ``prefork`` (netserv.prefork, listed
  when that module is present); the standard module has only
  :data:`STDLIB_MODELS`. :func:`models` lists them per impl.
* transports (:data:`TRANSPORTS`, transport -> class-name suffix): ``tcp``,
  ``udp``, ``unix`` (a Unix stream socket) and ``unix-dgram``.
* impl (:data:`IMPLS`): ``netserv`` or ``stdlib`` (the standard socketserver
  module).

One echo handler per protocol: :class:`StreamEchoHandler` (lines over a
stream, for every blocking model), :class:`DatagramEchoHandler`, and
netserv.eventdriven's ``LineEchoHandler`` for the select model.
:func:`echo_handler` picks the right one, built on the standard module's
handler classes for a stdlib server if asked, and with Nagle's algorithm
off (TCP_NODELAY) if asked: the benchmarks measure the server model, not
the 40 ms that Nagle plus a delayed ACK add to pipelined small replies.

Every server binds to 127.0.0.1 on port 0 (the kernel picks a free port), or
to a socket file in a fresh temporary directory; :func:`running` removes that
directory when the block ends. Nothing here listens on other interfaces.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

from .. import eventdriven
from ..handlers import DatagramRequestHandler, StreamRequestHandler

__all__ = [
    "DATAGRAM_TRANSPORTS",
    "IMPLS",
    "MODELS",
    "STDLIB_MODELS",
    "STREAM_TRANSPORTS",
    "TRANSPORTS",
    "DatagramEchoHandler",
    "StreamEchoHandler",
    "bind",
    "cleanup",
    "default_handler",
    "echo_handler",
    "echo_once",
    "is_datagram",
    "make_server",
    "models",
    "open_client",
    "running",
    "server_class",
    "set_nodelay",
]

LOOPBACK = "127.0.0.1"

#: Concurrency model -> class-name prefix of its combined servers.
MODELS = {"sync": "", "threading": "Threading", "forking": "Forking",
          "pool": "ThreadPool", "select": "EventDriven"}
#: The models the standard socketserver module has.
STDLIB_MODELS = ("sync", "threading", "forking")
#: Module that defines each model's combined classes in netserv.
_MODEL_MODULES = {"pool": "netserv.pool", "select": "netserv.eventdriven",
                  "prefork": "netserv.prefork"}
#: Transport -> class-name suffix.
TRANSPORTS = {"tcp": "TCPServer", "udp": "UDPServer",
              "unix": "UnixStreamServer", "unix-dgram": "UnixDatagramServer"}
STREAM_TRANSPORTS = ("tcp", "unix")
DATAGRAM_TRANSPORTS = ("udp", "unix-dgram")
IMPLS = ("netserv", "stdlib")



def _register_optional_models() -> None:
    """List the pre-fork model only where its module imports (it needs fork())."""
    if importlib.util.find_spec("netserv.prefork") is None:
        return
    try:
        importlib.import_module("netserv.prefork")
    except ImportError:
        return
    MODELS["prefork"] = "PreFork"


_register_optional_models()

#: Seconds a demo client waits for a reply before giving up: long enough for
#: a loaded 2-core machine, short enough that a hung server fails a test.
CLIENT_TIMEOUT = 10.0


def models(impl: str = "netserv") -> tuple[str, ...]:
    """The models an impl has, in the registry's order."""
    return tuple(MODELS) if impl == "netserv" else STDLIB_MODELS


def is_datagram(transport: str) -> bool:
    return transport in DATAGRAM_TRANSPORTS


def set_nodelay(sock: socket.socket) -> None:
    """Turn Nagle's algorithm off on a TCP socket (nothing on a Unix socket)."""
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class StreamEchoHandler(StreamRequestHandler):
    """Send every line back as it arrives, until the client closes."""

    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)


class DatagramEchoHandler(DatagramRequestHandler):
    """Send every datagram back."""

    def handle(self) -> None:
        self.wfile.write(self.packet)


class _NoDelayEventEcho(eventdriven.LineEchoHandler):
    """netserv.eventdriven's LineEchoHandler with Nagle's algorithm off."""

    __slots__ = ()

    def connection_made(self) -> None:
        set_nodelay(self.request)
        super().connection_made()


@functools.cache
def echo_handler(model: str = "sync", transport: str = "tcp", impl: str = "netserv",
                 nodelay: bool = False) -> type:
    """The echo handler that fits a model, transport and impl.

    ``impl="stdlib"`` gives the same handler built on socketserver's handler
    classes, so that comparing impls compares the whole request path.
    ``nodelay`` sets TCP_NODELAY on each connection (Nagle's algorithm off).
    The same arguments always return the same class.
    """
    if model == "select":
        return _NoDelayEventEcho if nodelay else eventdriven.LineEchoHandler
    ours: type = DatagramEchoHandler if is_datagram(transport) else StreamEchoHandler
    if impl == "stdlib":
        std = socketserver.DatagramRequestHandler if is_datagram(transport) \
            else socketserver.StreamRequestHandler
        handle = (DatagramEchoHandler.handle if is_datagram(transport)
                  else StreamEchoHandler.handle)
        ours = type("Stdlib" + ours.__name__, (std,), {"handle": handle,
                                                       "__doc__": ours.__doc__})
    if nodelay and not is_datagram(transport):
        ours = type("NoDelay" + ours.__name__, (ours,), {"disable_nagle_algorithm": True})
    return ours


def default_handler(model: str, transport: str) -> type:
    """The echo handler that fits a model and transport (netserv's, Nagle on)."""
    return echo_handler(model, transport)


def server_class(model: str = "sync", transport: str = "tcp", impl: str = "netserv") -> type:
    """Return the combined server class, e.g. ("threading", "tcp") -> ThreadingTCPServer."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}; choose from {', '.join(TRANSPORTS)}")
    if impl not in IMPLS:
        raise ValueError(f"unknown impl {impl!r}; choose from {', '.join(IMPLS)}")
    name = MODELS[model] + TRANSPORTS[transport]
    if model not in models(impl):
        raise ValueError(f"{impl} has no {name} (the {model!r} model is netserv's own)")
    if impl == "stdlib":
        module: Any = socketserver
    else:
        try:
            module = importlib.import_module(_MODEL_MODULES.get(model, "netserv"))
        except ImportError as exc:
            raise ValueError(f"model {model!r} cannot be loaded: {exc}") from None
    try:
        cls: type = getattr(module, name)
    except AttributeError:
        raise ValueError(f"{impl} has no {name} (model {model!r} over {transport!r}) "
                         f"on this system") from None
    return cls


def make_server(model: str = "sync", transport: str = "tcp", impl: str = "netserv",
                handler: type | None = None, *, nodelay: bool = False,
                **attributes: Any) -> Any:
    """Create and bind an echo server (or one with your handler) on loopback.

    The echo handler is netserv's (:func:`echo_handler`); ``nodelay`` turns
    Nagle's algorithm off on its connections.

    ``attributes`` are set on the new class before binding, so class
    variables such as ``request_queue_size``, ``daemon_threads`` or
    ``allow_reuse_address`` take effect. A Unix server gets a socket file in
    a new temporary directory (``server.demo_tmpdir``), removed by
    :func:`running` or :func:`cleanup`.
    """
    cls = server_class(model, transport, impl)
    if attributes:
        cls = type(cls.__name__, (cls,), attributes)
    return bind(cls, transport, handler or echo_handler(model, transport, nodelay=nodelay))


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
