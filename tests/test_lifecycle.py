"""The lifecycle (netserv.lifecycle, driven by netserv.base): the table, and the
illegal steps it refuses on real servers.

The table is checked as a table (every state reachable, every missing step
refused naming the state and the step); the servers are checked for the
faults a flag-based lifecycle let through: a second concurrent loop, a
shutdown() after server_close() that never returns, a serve_forever() that
fails while setting up and leaves stale state behind.
"""

from __future__ import annotations

import errno
import os
import threading
import time

import pytest

import support
from fdlimit import no_free_descriptors
from netserv import ServerState
from netserv.lab import demo
from netserv.lifecycle import TRANSITIONS, Lifecycle, describe_transitions

STEPS = sorted({step for _state, step in TRANSITIONS})

#: Models whose serve_forever() is checked; forking only where fork() exists.
LOOP_MODELS = ["sync", "threading", "pool", "select"] + (["forking"] if hasattr(os, "fork") else [])

#: The issue's bound for shutdown() on a closed server: no loop can run, so
#: there is nothing to wait for; a thread switch on a busy machine fits.
CLOSED_SHUTDOWN_SECONDS = 0.010


def path_to(target: ServerState) -> list[str]:
    """The shortest list of steps from READY to ``target`` along TRANSITIONS."""
    paths = {ServerState.READY: []}
    frontier = [ServerState.READY]
    while frontier:
        state = frontier.pop(0)
        for (source, step), new in TRANSITIONS.items():
            if source is state and new not in paths:
                paths[new] = paths[state] + [step]
                frontier.append(new)
    return paths[target]


def lifecycle_in(state: ServerState) -> Lifecycle:
    lifecycle = Lifecycle("TestServer")
    for step in path_to(state):
        lifecycle.step(step)
    assert lifecycle.state is state
    return lifecycle


# -- the table -------------------------------------------------------------------

def test_transitions_reach_every_state_from_ready() -> None:
    for state in ServerState:
        assert lifecycle_in(state).state is state


@pytest.mark.parametrize("state", list(ServerState), ids=lambda state: state.name)
def test_transitions_illegal_step_raises_naming_state_and_step(state: ServerState) -> None:
    illegal = [step for step in STEPS if (state, step) not in TRANSITIONS]
    for step in illegal:
        lifecycle = lifecycle_in(state)
        with pytest.raises(RuntimeError) as error:
            lifecycle.step(step)
        assert f"{step}()" in str(error.value) and state.name in str(error.value)
        assert lifecycle.state is state  # refused: nothing moved


def test_transitions_close_is_always_legal_and_closed_is_final() -> None:
    for state in ServerState:
        assert (state, "server_close") in TRANSITIONS
    leaving_closed = {new for (source, _step), new in TRANSITIONS.items()
                      if source is ServerState.CLOSED}
    assert leaving_closed == {ServerState.CLOSED}
    starting = {source for (source, step) in TRANSITIONS if step == "serve_forever"}
    assert starting == {ServerState.READY, ServerState.SHUTDOWN_PENDING}


def test_transitions_description_has_one_line_per_move() -> None:
    lines = describe_transitions().splitlines()
    assert len(lines) == len(TRANSITIONS)
    assert "READY            --serve_forever--> SERVING" in lines


# -- illegal steps on real servers ---------------------------------------------

def test_base_server_second_concurrent_serve_forever_raises() -> None:
    server = demo.make_server("sync")
    with support.serving(server):
        assert support.exchange(server) == b"hello\n"  # the first loop runs
        with pytest.raises(RuntimeError) as error:
            server.serve_forever()
        message = str(error.value)
        assert "serve_forever()" in message and "SERVING" in message
        assert support.exchange(server) == b"hello\n"  # and it serves on
    assert server.state is ServerState.CLOSED


def timed_shutdown(server: object) -> float:
    """Seconds shutdown() took, run in a daemon thread so that a hang fails, not hangs."""
    took: list[float] = []

    def stop() -> None:
        start = time.perf_counter()
        server.shutdown()  # type: ignore[attr-defined]
        took.append(time.perf_counter() - start)

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    stopper.join(support.CLIENT_TIMEOUT)
    assert took, "shutdown() after server_close() did not return"
    return took[0]


def test_base_server_shutdown_after_close_on_a_never_served_server_returns_at_once() -> None:
    server = demo.make_server("sync")
    demo.cleanup(server)
    assert timed_shutdown(server) < CLOSED_SHUTDOWN_SECONDS
    assert server.state is ServerState.CLOSED


def test_base_server_shutdown_after_close_while_serving_waits_for_the_loop() -> None:
    server = demo.make_server("sync")
    loop = threading.Thread(target=server.serve_forever, args=(60.0,))
    loop.start()
    try:
        assert support.exchange(server) == b"hello\n"
        server.server_close()  # from this thread: the loop is woken, not waited for
        timed_shutdown(server)  # returns once the loop has
        loop.join(support.CLIENT_TIMEOUT)
        assert not loop.is_alive()
        assert server.state is ServerState.CLOSED
    finally:
        loop.join()
        demo.cleanup(server)


@pytest.mark.parametrize("impl", support.IMPLS)
def test_base_server_shutdown_after_the_loop_returned_returns_and_stops_the_next(
        impl: str) -> None:
    """The standard module's contract, kept: a shutdown() with no loop running,
    once one has run, returns at once and makes the next loop return at once."""
    server = support.make("sync", "tcp", impl)
    with support.closing(server):
        loop = threading.Thread(target=server.serve_forever, args=(support.TEST_POLL_INTERVAL,))
        loop.start()
        assert support.exchange(server) == b"hello\n"
        server.shutdown()
        loop.join()
        server.shutdown()  # nothing runs: returns at once
        server.serve_forever(poll_interval=60.0)  # and this returns at once too


# -- a serve_forever() that fails while setting up ------------------------------

@pytest.mark.parametrize("model", LOOP_MODELS)
def test_base_server_serve_forever_without_a_free_descriptor_raises_and_serves_later(
        model: str) -> None:
    server = demo.make_server(model)
    try:
        with no_free_descriptors(), pytest.raises(OSError) as error:
            server.serve_forever()
        assert error.value.errno == errno.EMFILE
        assert server.state is ServerState.READY and not server.stop_requested
        with support.serving(server):  # once descriptors are free: as if nothing happened
            assert support.exchange(server) == b"hello\n"
        assert server.state is ServerState.CLOSED
    finally:
        demo.cleanup(server)


def test_base_server_shutdown_after_a_failed_serve_forever_and_close_returns() -> None:
    """No stale loop thread is left behind: from the very thread whose
    serve_forever() failed, shutdown() after server_close() returns."""
    server = demo.make_server("sync")
    try:
        with no_free_descriptors(), pytest.raises(OSError):
            server.serve_forever()
        server.server_close()
        server.shutdown()  # neither "called from the serving thread" nor a hang
        assert server.state is ServerState.CLOSED
    finally:
        demo.cleanup(server)
