"""Numeric settings (netserv.settings): every one checked, with its name and range.

Server classes under test: TCPServer, UDPServer, ForkingTCPServer,
ThreadPoolTCPServer, EventDrivenTCPServer, and the handlers
StreamRequestHandler and LineHandler, through the servers that use them.
Each declared setting gets values just outside its range, NaN, infinity,
a string and a bool; the constructor must refuse each before binding, with
a message that names the setting and its range. A value changed on the
instance after construction is refused when the loop starts.
"""

from __future__ import annotations

import math
import os
import socketserver
from typing import Any

import pytest

import netserv
from netserv import eventdriven, events, handlers, pool, settings
from netserv.lab import demo

import support

#: (class whose settings are checked, how to build a server with a given
#: value for one of them): a server class is given the value as a class
#: attribute; a handler class through the server that uses it.
SERVERS: dict[str, tuple[type, type]] = {
    "TCPServer": (netserv.TCPServer, netserv.StreamRequestHandler),
    "UDPServer": (netserv.UDPServer, netserv.DatagramRequestHandler),
    "ThreadPoolTCPServer": (pool.ThreadPoolTCPServer, netserv.StreamRequestHandler),
    "EventDrivenTCPServer": (eventdriven.EventDrivenTCPServer, events.LineEchoHandler),
}
if hasattr(os, "fork"):
    SERVERS["ForkingTCPServer"] = (netserv.ForkingTCPServer, netserv.StreamRequestHandler)
HANDLERS: dict[str, tuple[type, type]] = {
    "StreamRequestHandler": (netserv.TCPServer, handlers.StreamRequestHandler),
    "LineHandler": (eventdriven.EventDrivenTCPServer, events.LineHandler),
}


def bad_values(setting: settings.Setting) -> list[Any]:
    """Values just outside the setting's range, and values of the wrong kind."""
    values: list[Any] = [math.nan, "1", True]
    values.append(setting.low if setting.above else setting.low - 1)
    if setting.high is not None:
        values.append(setting.high + 1)
    else:
        values.append(math.inf)
    if setting.integer:
        values.append(setting.low + 1.5)
    if not setting.none:
        values.append(None)
    return values


def cases() -> list[Any]:
    found = []
    for group in (SERVERS, HANDLERS):
        for label, (server_cls, handler_cls) in group.items():
            target = handler_cls if group is HANDLERS else server_cls
            for setting in settings.declared_settings(target):
                for value in bad_values(setting):
                    found.append(pytest.param(group is HANDLERS, server_cls, handler_cls,
                                              setting, value,
                                              id=f"{label}.{setting.name}={value!r}"))
    return found


def build(in_handler: bool, server_cls: type, handler_cls: type, name: str, value: Any) -> Any:
    if in_handler:
        handler_cls = type("Handler", (handler_cls,), {name: value})
    else:
        server_cls = type(server_cls.__name__, (server_cls,), {name: value})
    return server_cls((demo.LOOPBACK, 0), handler_cls)


@pytest.mark.parametrize("in_handler, server_cls, handler_cls, setting, value", cases())
def test_a_setting_out_of_range_is_refused_at_construction(
        in_handler: bool, server_cls: type, handler_cls: type, setting: settings.Setting,
        value: Any) -> None:
    with pytest.raises((ValueError, TypeError)) as raised:
        server = build(in_handler, server_cls, handler_cls, setting.name, value)
        server.server_close()  # not reached unless the value was accepted
    message = str(raised.value)
    assert f".{setting.name} must be {setting.describe()}" in message
    assert repr(value) in message


@pytest.mark.parametrize("label", sorted({**SERVERS, **HANDLERS}))
def test_the_defaults_are_in_range(label: str) -> None:
    server_cls, handler_cls = {**SERVERS, **HANDLERS}[label]
    server = server_cls((demo.LOOPBACK, 0), handler_cls)
    server.server_close()


def numeric_attributes(cls: type) -> set[str]:
    """Public class attributes holding a plain int or float, defined by netserv."""
    names = set()
    for klass in cls.__mro__:
        if not klass.__module__.startswith("netserv"):
            continue
        for name, value in vars(klass).items():
            if not name.startswith("_") and type(value) in (int, float):
                names.add(name)
    return names


#: Numeric class attributes that are not settings: counters the server keeps.
NOT_SETTINGS = {"restarts"}


def every_class() -> list[Any]:
    classes: dict[str, type] = {}
    for module in (netserv, pool, eventdriven, events, handlers):
        for name in dir(module):
            cls = getattr(module, name)
            if isinstance(cls, type) and cls.__module__.startswith("netserv"):
                classes[cls.__name__] = cls
    return [pytest.param(cls, id=name) for name, cls in classes.items()]


@pytest.mark.parametrize("cls", sorted(every_class(), key=lambda p: p.id))
def test_every_numeric_setting_is_declared(cls: type) -> None:
    declared = {setting.name for setting in settings.declared_settings(cls)}
    assert numeric_attributes(cls) - NOT_SETTINGS <= declared


# -- a value changed after construction: refused when the loop starts --------

@pytest.mark.parametrize("call", ["serve_forever", "handle_request"])
def test_a_setting_changed_on_the_instance_is_refused_when_a_loop_starts(call: str) -> None:
    server = demo.make_server("select", "tcp")
    try:
        server.idle_timeout = 0
        with pytest.raises(ValueError,
                           match=r"idle_timeout must be None \(never\) or finite seconds > 0"):
            getattr(server, call)()
        assert server.state is netserv.ServerState.READY
        server.idle_timeout = 1.0
        with support.serving(server):
            assert demo.echo_once(server) == b"hello\n"
    finally:
        demo.cleanup(server)


@pytest.mark.parametrize("poll_interval", [0, -1, math.nan])
def test_serve_forever_refuses_a_poll_interval_that_would_spin(poll_interval: float) -> None:
    server = demo.make_server("sync", "tcp")
    try:
        with pytest.raises(ValueError, match=r"poll_interval of TCPServer.serve_forever\(\) "
                                             r"must be None"):
            server.serve_forever(poll_interval)
        assert server.state is netserv.ServerState.READY
    finally:
        demo.cleanup(server)


# -- the event-driven loop: zero limits, and no scan without connections -----

class DeadlineZero(events.LineEchoHandler):
    request_deadline = 0


@pytest.mark.parametrize("idle_timeout, handler", [
    (0, events.LineEchoHandler), (-1, events.LineEchoHandler), (300.0, DeadlineZero)],
    ids=["idle_timeout=0", "idle_timeout=-1", "request_deadline=0"])
def test_event_driven_server_refuses_limits_that_spin_the_loop(
        idle_timeout: float, handler: type) -> None:
    cls = type("Server", (eventdriven.EventDrivenTCPServer,), {"idle_timeout": idle_timeout})
    with pytest.raises(ValueError, match=r"(idle_timeout|request_deadline) must be None"):
        cls((demo.LOOPBACK, 0), handler).server_close()


class CountingTurns(eventdriven.EventDrivenTCPServer):
    """Counts how often the loop asks how long it may wait."""

    turns = 0

    def _loop_timeout(self, poll_interval: float | None) -> float | None:
        self.turns += 1
        return super()._loop_timeout(poll_interval)


def test_event_driven_loop_with_no_connection_waits_whatever_the_limit() -> None:
    """A tiny idle_timeout is legal; with nobody connected the loop must still
    wait (here for handle_request's whole timeout) instead of scanning an
    empty table thousands of times."""
    server = CountingTurns((demo.LOOPBACK, 0), events.LineEchoHandler)
    server.idle_timeout = 1e-6
    server.timeout = 0.2
    try:
        server.handle_request()  # nobody connects: waits the timeout
        assert server.turns <= 3
    finally:
        server.server_close()


# -- ForkingMixIn: max_children = 0 ------------------------------------------

@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() here")
@pytest.mark.parametrize("max_children", [0, -1])
def test_forking_server_refuses_max_children_below_one(max_children: int) -> None:
    """The standard module accepts it and then hangs after the first request
    (waiting for a child that does not exist); netserv refuses it at once."""
    theirs = type("S", (socketserver.ForkingTCPServer,), {"max_children": max_children})
    theirs((demo.LOOPBACK, 0), socketserver.StreamRequestHandler).server_close()
    ours = type("S", (netserv.ForkingTCPServer,), {"max_children": max_children})
    with pytest.raises(ValueError, match=r"S\.max_children must be an int >= 1 \(with 0 "):
        ours((demo.LOOPBACK, 0), netserv.StreamRequestHandler)


def test_settings_table_lists_each_class_own_settings() -> None:
    rows = settings.settings_table([pool.ThreadPoolMixIn])
    assert rows == [("ThreadPoolMixIn", "pool_size", f"an int from 1 to {pool.MAX_POOL_SIZE}"),
                    ("ThreadPoolMixIn", "queue_size", "an int >= 1")]

