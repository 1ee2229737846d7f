"""Checks for exercise 06 (see README.md): a chat server.

Every wait is on a line from the server (with a timeout): "* welcome" tells
a client that it is a member, so the checks never sleep to let a join happen.
"""

import socket
import struct

import pytest

pytestmark = pytest.mark.timeout(30)


def join(connect, server, name):
    client = connect(server.server_address)
    try:
        assert client.ask(name + b"\n") == b"* welcome " + name + b"\n"
    except BaseException:
        client.close()
        raise
    return client


def test_members_hear_joins_and_messages(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"alice") as alice:
            with join(connect, server, b"bob") as bob:
                assert alice.line() == b"* bob joined\n"
                alice.send(b"hi bob\n")
                assert bob.line() == b"alice: hi bob\n"
                bob.send(b"hi alice\n")
                # Had alice's own line come back to her, it would be first in line.
                assert alice.line() == b"bob: hi alice\n", "never send a line back to its sender"


def test_everyone_else_gets_each_line(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"a") as a, join(connect, server, b"b") as b:
            assert a.line() == b"* b joined\n"
            with join(connect, server, b"c") as c:
                assert a.line() == b.line() == b"* c joined\n"
                c.send(b"one\r\ntwo\n")
                assert [a.line(), a.line()] == [b"c: one\n", b"c: two\n"]
                assert [b.line(), b.line()] == [b"c: one\n", b"c: two\n"]


def test_leaving_is_announced(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"alice") as alice:
            with join(connect, server, b"bob"):
                assert alice.line() == b"* bob joined\n"
            assert alice.line() == b"* bob left\n"
            # The name is free again once its owner left.
            with join(connect, server, b"bob"):
                assert alice.line() == b"* bob joined\n"


def test_bad_and_taken_names_are_refused(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"alice") as alice:
            for bad in [b"", b"two words", b"x" * 17, b"\xff\xfe", b"semi;colon"]:
                with connect(server.server_address) as client:
                    assert client.ask(bad + b"\n") == b"* bad name\n"
                    assert client.line() == b"", "a refused client is disconnected"
            with connect(server.server_address) as client:
                assert client.ask(b"alice\n") == b"* name taken\n"
                assert client.line() == b""
            # None of them joined, so alice heard nothing; the next line she gets:
            with join(connect, server, b"bob"):
                assert alice.line() == b"* bob joined\n"


def test_a_client_that_vanishes_is_announced_gone(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"alice") as alice, join(connect, server, b"bob") as bob:
            assert alice.line() == b"* bob joined\n"
            carol = join(connect, server, b"carol")
            assert alice.line() == bob.line() == b"* carol joined\n"
            # Close with a reset (SO_LINGER 0): carol's socket is gone, not politely closed,
            # and her handler's next read raises ConnectionResetError: she must leave anyway.
            carol.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            carol.close()
            assert alice.line() == bob.line() == b"* carol left\n", (
                "a member whose connection broke must leave like one that said goodbye")
            alice.send(b"still here\n")
            assert bob.line() == b"alice: still here\n"


class BrokenWriter:
    """A member's wfile whose connection is gone: every write fails."""

    def write(self, data):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_failed_send_skips_only_that_member(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"alice") as alice:
            # A member whose socket is already gone, listed before bob.
            assert server.join(b"ghost", BrokenWriter())
            with join(connect, server, b"bob") as bob:
                assert alice.line() == b"* bob joined\n"
                for n in range(3):
                    alice.send(b"message %d\n" % n)
                assert [bob.line() for _ in range(3)] == [b"alice: message %d\n" % n
                                                        for n in range(3)], (
                    "a send that fails for one member must not stop the others' messages")
                bob.send(b"hi\n")
                assert alice.line() == b"bob: hi\n"


def test_disconnect_before_naming_is_silent(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with join(connect, server, b"alice") as alice:
            with connect(server.server_address):
                pass  # connects and leaves without a name
            with join(connect, server, b"bob"):
                assert alice.line() == b"* bob joined\n"
