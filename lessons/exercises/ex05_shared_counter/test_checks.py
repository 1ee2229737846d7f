"""Checks for exercise 05 (see README.md): a counter shared by handler threads.

A race shows only when two threads are between the read and the write at
the same moment, which may take many tries. The first check makes it
happen at once: it replaces the exercise's ``switch_point()`` with a gate
that holds the first thread there until a second one arrives (or until
``GATE_SECONDS`` pass, which is what happens when a lock keeps the second
one out). So the racy version loses an increment on the first try, and the
locked version is merely slowed down.

The reply must be the value this increment wrote, not whatever the counter
holds a moment later. The second check watches every read and write of
``server.count``: the first time a thread reads the count right after writing
it, the read waits until another thread writes (or ``GATE_SECONDS`` pass).
A read made after the lock was released then sees the other thread's value,
and two clients get the same reply; a read inside the lock merely waits.
"""

import threading

import pytest

pytestmark = pytest.mark.timeout(60)

#: How long the gate holds a thread waiting for a second one: ample for a
#: second handler thread to arrive on a loaded machine. With a correct lock
#: no second thread can arrive, so each locked increment waits this long.
GATE_SECONDS = 3.0


class Gate:
    """A switch point that keeps the first thread waiting until a second one is inside too.

    Only the first thread to arrive waits: later ones pass straight through,
    so a correct (locked) server loses GATE_SECONDS once, not per request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.arrivals = 0
        self.inside = 0
        self.most_inside = 0
        self.two_inside = threading.Event()

    def __call__(self) -> None:
        with self._lock:
            self.arrivals += 1
            first = self.arrivals == 1
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            if self.inside >= 2:
                self.two_inside.set()
        if first:
            self.two_inside.wait(GATE_SECONDS)
        with self._lock:
            self.inside -= 1


class WatchedCount:
    """A data descriptor for CounterServer.count that delays a thread's read-after-own-write."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0
        self.last_writer = None
        self.delayed = False
        self.other_wrote = threading.Event()

    def __get__(self, server, owner=None):
        if server is None:
            return self
        me = threading.get_ident()
        with self._lock:
            delay = self.last_writer == me and not self.delayed
            if delay:
                self.delayed = True
                self.other_wrote.clear()
        if delay:
            self.other_wrote.wait(GATE_SECONDS)
        with self._lock:
            return self.value

    def __set__(self, server, value) -> None:
        with self._lock:
            if self.last_writer is not None and self.last_writer != threading.get_ident():
                self.other_wrote.set()
            self.last_writer = threading.get_ident()
            self.value = value


def test_one_client_counts(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"GET\n") == b"0\n"
        assert [client.ask(b"INCR\n") for _ in range(3)] == [b"1\n", b"2\n", b"3\n"]
        assert client.ask(b"GET\n") == b"3\n"


def test_unknown_command(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"DECR\n") == b"ERR unknown command\n"
        assert client.ask(b"INCR\n") == b"1\n"


def test_two_threads_never_inside_at_once(exercise, serve, connect, monkeypatch):
    gate = Gate()
    monkeypatch.setattr(exercise, "switch_point", gate)
    with serve(exercise.make_server()) as server:
        with connect(server.server_address) as a, connect(server.server_address) as b:
            a.send(b"INCR\n")  # a's handler thread waits at the gate...
            b.send(b"INCR\n")  # ...and b's arrives there too, unless a lock stops it
            replies = sorted([a.line(), b.line()])
            assert gate.most_inside == 1, (
                "two handler threads were between reading and writing the counter at the "
                "same time: one increment overwrote the other")
            assert replies == [b"1\n", b"2\n"]
            assert a.ask(b"GET\n") == b"2\n"


def test_each_reply_is_the_value_this_increment_wrote(exercise, serve, connect, monkeypatch):
    monkeypatch.setattr(exercise.CounterServer, "count", WatchedCount(), raising=False)
    with serve(exercise.make_server()) as server:
        with connect(server.server_address) as a, connect(server.server_address) as b:
            a.send(b"INCR\n")  # if a reads the count after unlocking, it waits there...
            b.send(b"INCR\n")  # ...until b's increment has written 2
            replies = sorted([a.line(), b.line()])
            assert replies == [b"1\n", b"2\n"], (
                "two increments got the same reply: read the new value while you still hold "
                "the lock (or return the value you computed)")


def test_many_clients_lose_nothing(exercise, serve, connect):
    clients, increments = 6, 60
    errors, replies = [], []

    def hammer(address):
        try:
            with connect(address) as client:
                for _ in range(increments):
                    client.send(b"INCR\n")
                for _ in range(increments):
                    reply = client.line().strip()
                    if reply.isdigit():
                        replies.append(int(reply))
                    else:
                        errors.append("a reply to INCR was not a number")
        except OSError as exc:
            errors.append(repr(exc))

    with serve(exercise.make_server()) as server:
        threads = [threading.Thread(target=hammer, args=(server.server_address,))
                   for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with connect(server.server_address) as client:
            assert client.ask(b"GET\n") == b"%d\n" % (clients * increments)
        assert sorted(replies) == list(range(1, clients * increments + 1)), (
            "every INCR must get its own new value: some replies repeat")
