"""Checks for exercise 09 (see README.md): a counter shared by worker processes.

A sync worker stays with its connection until the client closes it. So two
connections held open at the same time are served by the two workers, and
whatever one of them counts, the other must see. Before connecting, each
check waits until both workers are forked: a client socket opened earlier
would be inherited by a worker, and closing it here would not close it there.
"""

import os
import threading
import time

import pytest

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="pre-forked workers need os.fork(), "
                       "which this system lacks: use WSL2 or a Codespace (docs/setup.md)"),
    pytest.mark.timeout(60),
    # The server's loop runs in a thread of this process when it forks its workers.
    pytest.mark.filterwarnings("ignore:.*multi-threaded.*fork:DeprecationWarning"),
]

#: Increments each of two clients sends at once in the concurrency check:
#: with SWITCH_SECONDS of work in each, two workers overlap dozens of times.
INCREMENTS = 40
#: Seconds to wait for the workers to be forked.
STARTUP_SECONDS = 10.0


def workers_ready(server):
    """Wait (polling, bounded) until every worker of ``server`` is forked."""
    deadline, delay = time.monotonic() + STARTUP_SECONDS, 0.001
    while len(server.worker_pids) < server.workers:
        assert time.monotonic() < deadline, "the workers were never started"
        time.sleep(delay)
        delay = min(2 * delay, 0.05)
    return server


def test_it_is_a_pre_forked_server_with_two_workers(exercise):
    from netserv.prefork import PreForkMixIn

    server = exercise.make_server()
    try:
        assert isinstance(server, PreForkMixIn), "keep CounterServer a PreForkTCPServer"
        assert server.workers >= 2, "the point is several worker processes: keep workers = 2"
    finally:
        server.server_close()


def test_one_client_counts(exercise, serve, connect):
    with serve(exercise.make_server()) as server, \
            connect(workers_ready(server).server_address) as client:
        assert client.ask(b"GET\n") == b"0\n"
        assert [client.ask(b"INCR\n") for _ in range(3)] == [b"1\n", b"2\n", b"3\n"]
        assert client.ask(b"GET\n") == b"3\n"
        assert client.ask(b"DECR\n") == b"ERR unknown command\n"


def test_both_workers_see_one_counter(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        address = workers_ready(server).server_address
        with connect(address) as a, connect(address) as b:
            # Both connections are open at once: each has a worker of its own.
            assert a.ask(b"INCR\n") == b"1\n"
            assert b.ask(b"INCR\n") == b"2\n", (
                "the second worker did not see the first worker's increment: each "
                "process has its own copy of a counter kept in ordinary memory")
            assert a.ask(b"GET\n") == b"2\n"


def test_two_workers_incrementing_at_once_lose_nothing(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        address = workers_ready(server).server_address
        with connect(address) as a, connect(address) as b:
            assert a.ask(b"GET\n") == b"0\n" and b.ask(b"GET\n") == b"0\n"  # both workers busy
            replies = {a: [], b: []}

            def hammer(client):
                client.send(b"INCR\n" * INCREMENTS)
                replies[client] = [client.line() for _ in range(INCREMENTS)]

            threads = [threading.Thread(target=hammer, args=(c,)) for c in (a, b)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            total = a.ask(b"GET\n")
        assert total == b"%d\n" % (2 * INCREMENTS), (
            f"{2 * INCREMENTS} increments from two workers at once, but the counter reads "
            f"{total!r}: both workers were between the read and the write at the same "
            "time, so one overwrote the other's update. A lock must exclude the other process")
        values = sorted(int(line) for lines in replies.values() for line in lines)
        assert values == list(range(1, 2 * INCREMENTS + 1)), "every INCR must get its own value"


def test_server_close_releases_the_shared_memory(exercise):
    import mmap

    server = exercise.make_server()
    server.server_close()
    left = [name for name, value in vars(server).items()
            if isinstance(value, mmap.mmap) and not value.closed]
    assert not left, f"server_close() leaves shared memory mapped: close {left}"
