"""netserv as a drop-in for socketserver: names, bases, attributes, hook order.

The static half compares the two modules by introspection (nothing is
listed by hand except the names Python 3.13 adds over the running
interpreter). The dynamic half runs the same recording server subclass,
handler and client on both modules and compares the hooks each one called.
"""

from __future__ import annotations

import inspect
import os
import socket
import socketserver

import pytest

import netserv
from netserv.lab import demo

import support

#: socketserver.__all__ of Python 3.13 on a system with fork() and AF_UNIX,
#: written out because the interpreter running the tests may be older.
ALL_313 = ["BaseServer", "TCPServer", "UDPServer",
           "ThreadingUDPServer", "ThreadingTCPServer",
           "BaseRequestHandler", "StreamRequestHandler",
           "DatagramRequestHandler", "ThreadingMixIn",
           "ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn",
           "UnixStreamServer", "UnixDatagramServer",
           "ThreadingUnixStreamServer", "ThreadingUnixDatagramServer",
           "ForkingUnixStreamServer", "ForkingUnixDatagramServer"]
#: The bases of the classes 3.13 adds (the others are compared with the running stdlib).
BASES_313 = {"ForkingUnixStreamServer": ["ForkingMixIn", "UnixStreamServer"],
             "ForkingUnixDatagramServer": ["ForkingMixIn", "UnixDatagramServer"]}


#: Public names netserv adds to the standard classes, by the class that defines
#: them (subclasses inherit them). Each is documented in docs/differences.md,
#: and its default keeps the standard behaviour.
ADDITIONS = {"BaseServer": {"state", "stop_requested", "handle_accept_exhausted",
                            "accept_backoff", "numeric_settings", "check_settings"},
             "ForkingMixIn": {"numeric_settings"},
             "UnixStreamServer": {"cleanup_socket"},
             "UnixDatagramServer": {"cleanup_socket"},
             "StreamRequestHandler": {"request_deadline", "deadline_exceeded",
                                      "numeric_settings"}}


def additions(cls: type) -> set[str]:
    """The netserv-only public names of cls, from ADDITIONS along its MRO."""
    return set().union(*(ADDITIONS.get(base.__name__, set()) for base in cls.__mro__))


def stdlib_class(name: str) -> type:
    """socketserver's class, or for a name new in 3.13 the one-line class
    3.13 defines, built from the running stdlib's parts."""
    if hasattr(socketserver, name):
        return getattr(socketserver, name)
    transport = {"ForkingUnixStreamServer": "unix", "ForkingUnixDatagramServer": "unix-dgram"}
    return support.server_class("forking", transport[name], "stdlib")


def public_names(cls: type) -> set[str]:
    return {name for name in dir(cls) if not name.startswith("_")}


def parameters(function: object) -> list[tuple[str, object, object]]:
    """A signature without annotations: (name, kind, default) per parameter."""
    return [(p.name, p.kind, p.default)
            for p in inspect.signature(function).parameters.values()]  # type: ignore[arg-type]


# -- names and bases -----------------------------------------------------------

def test_all_matches_python_313_list() -> None:
    assert netserv.__all__ == ALL_313


def test_all_contains_running_stdlib_names_in_the_same_order() -> None:
    stdlib = socketserver.__all__
    assert [name for name in netserv.__all__ if name in stdlib] == stdlib


@pytest.mark.parametrize("name", ALL_313)
def test_class_has_the_stdlib_bases(name: str) -> None:
    ours = getattr(netserv, name)
    if hasattr(socketserver, name):
        expected = [base.__name__ for base in getattr(socketserver, name).__bases__]
    else:
        expected = BASES_313.get(name, [])
    assert [base.__name__ for base in ours.__bases__] == expected


@pytest.mark.parametrize("name", ALL_313)
def test_class_mro_matches_stdlib_by_name(name: str) -> None:
    if not hasattr(socketserver, name):
        pytest.skip(f"{name} is new in Python 3.13; bases checked above")
    ours = [c.__name__ for c in getattr(netserv, name).__mro__]
    theirs = [c.__name__ for c in getattr(socketserver, name).__mro__]
    assert ours == theirs


def test_private_socket_writer_name_is_kept() -> None:
    assert netserv._SocketWriter is netserv.SocketWriter


# -- attributes, defaults, signatures ---------------------------------------

@pytest.mark.parametrize("name", ALL_313)
def test_class_has_the_same_public_names(name: str) -> None:
    ours = getattr(netserv, name)
    assert additions(ours) <= public_names(ours), "ADDITIONS names what does not exist"
    assert public_names(ours) - additions(ours) == public_names(stdlib_class(name))


@pytest.mark.parametrize("name", ALL_313)
def test_class_attributes_have_the_same_defaults(name: str) -> None:
    ours, theirs = getattr(netserv, name), stdlib_class(name)
    checked = []
    for attr in sorted(public_names(theirs)):
        value = inspect.getattr_static(theirs, attr)
        if callable(value):
            continue
        checked.append(attr)
        assert inspect.getattr_static(ours, attr) == value, f"{name}.{attr}"
    has_attributes = name.endswith(("Server", "MixIn")) and name != "BaseServer"
    if has_attributes or name == "StreamRequestHandler":
        assert checked, f"{name} should have class attributes to compare"


@pytest.mark.parametrize("name", ALL_313)
def test_methods_have_the_same_parameters(name: str) -> None:
    ours, theirs = getattr(netserv, name), stdlib_class(name)
    for attr in sorted(public_names(theirs) | {"__init__"}):
        value = getattr(theirs, attr)
        if callable(value) and not isinstance(value, type):
            assert parameters(getattr(ours, attr)) == parameters(value), f"{name}.{attr}"


def test_import_as_socketserver_runs_stdlib_style_code() -> None:
    """The module docstring's promise, as a program written for the stdlib."""
    import netserv as socketserver_alias

    class Upper(socketserver_alias.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(self.rfile.readline().upper())

    with socketserver_alias.TCPServer(("127.0.0.1", 0), Upper) as server:
        with support.serving(server):
            assert support.exchange(server, b"shout\n") == b"SHOUT\n"


# -- hook order, the same handler and client on both modules --------------------

def observe_one_request(impl: str, model: str, transport: str,
                        driver: str, handler: type | None = None) -> list[list[str]]:
    """Serve one echo request and return the hooks each process/thread ran."""
    handler = handler or demo.default_handler(model, transport)
    with support.HookLog() as log:
        server = support.recording_server(log, model, transport, impl, handler)
        log.add("-- constructed")
        if driver == "handle_request":
            with support.closing(server):
                with support.client(server) as sock:
                    sock.sendall(b"ping\n")
                    if not support.is_datagram(transport):
                        sock.shutdown(socket.SHUT_WR)
                    server.handle_request()
                    reply = sock.recv(100)
        else:
            # The request is sent before the loop starts, so the loop's first
            # select() finds it: no service_actions before it, whatever timing.
            with support.client(server) as sock:
                sock.sendall(b"ping\n")
                if not support.is_datagram(transport):
                    sock.shutdown(socket.SHUT_WR)
                with support.serving(server):
                    reply = sock.recv(100)
        assert reply == b"ping\n"
        return [support.collapse(events) for events in log.by_actor()]


SYNC_REQUEST = ["get_request", "verify_request", "process_request", "finish_request",
                "setup", "handle", "finish", "shutdown_request", "close_request"]


@pytest.mark.parametrize("impl", support.IMPLS)
@pytest.mark.parametrize("transport", support.TRANSPORTS)
def test_sync_server_hook_order_for_handle_request(impl: str, transport: str) -> None:
    """BaseServer.handle_request: the documented pipeline, in one thread."""
    actors = observe_one_request(impl, "sync", transport, "handle_request")
    assert actors == [["server_bind", "server_activate", "-- constructed", *SYNC_REQUEST,
                       "server_close"]]


@pytest.mark.parametrize("model", support.MODELS)
@pytest.mark.parametrize("transport", support.TRANSPORTS)
@pytest.mark.parametrize("driver", ["handle_request", "serve_forever"])
def test_hook_order_is_the_same_on_both_modules(model: str, transport: str, driver: str) -> None:
    """Every model x transport x driver: netserv calls the stdlib's hooks, in its order."""
    if model == "forking" and not hasattr(os, "fork"):
        pytest.skip("no fork() here")
    theirs = observe_one_request("stdlib", model, transport, driver)
    ours = observe_one_request("netserv", model, transport, driver)
    assert ours == theirs
    # And the comparison is not vacuous: the request really went through.
    assert any("finish_request" in events for events in theirs)


@pytest.mark.parametrize("impl", support.IMPLS)
def test_threading_server_hook_order_for_serve_forever(impl: str) -> None:
    actors = observe_one_request(impl, "threading", "tcp", "serve_forever")
    main, loop, worker = actors
    assert main == ["server_bind", "server_activate", "-- constructed", "server_close"]
    assert loop == ["get_request", "verify_request", "process_request", "service_actions"]
    assert worker == ["process_request_thread", "finish_request", "setup", "handle", "finish",
                      "shutdown_request", "close_request"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
@pytest.mark.parametrize("impl", support.IMPLS)
def test_forking_server_hook_order_for_serve_forever(impl: str) -> None:
    actors = observe_one_request(impl, "forking", "tcp", "serve_forever")
    main, loop, child = actors
    assert main == ["server_bind", "server_activate", "-- constructed", "server_close"]
    assert loop == ["get_request", "verify_request", "process_request", "close_request",
                    "service_actions"]
    assert child == ["finish_request", "setup", "handle", "finish", "shutdown_request",
                     "close_request"]

