"""Checks for exercise 07 (see README.md): an event-driven handler.

The server runs one thread for everyone, so a check that one client's
unfinished line does not hold up another is a check that nothing blocks.
"""

import socket

import pytest

pytestmark = pytest.mark.timeout(30)


def test_running_total(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"1\n") == b"= 1\n"
        assert c.ask(b"2\n") == b"= 3\n"
        assert c.ask(b" -5 \r\n") == b"= -2\n"
        assert c.ask(b"reset\n") == b"= 0\n"
        assert c.ask(b"40\n") == b"= 40\n"


def test_lines_in_pieces_and_several_at_once(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        for piece in (b"1", b"2", b"\n"):
            c.send(piece)
        assert c.line() == b"= 12\n"
        c.send(b"1\n2\n3\n")
        assert [c.line() for _ in range(3)] == [b"= 13\n", b"= 15\n", b"= 18\n"]


def test_each_connection_has_its_own_total(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        clients = []
        try:
            for n in range(10):  # one at a time: the listen() backlog is small
                clients.append(connect(server.server_address))
                assert clients[-1].ask(b"%d\n" % n) == b"= %d\n" % n
            for n, c in enumerate(clients):
                assert c.ask(b"%d\n" % n) == b"= %d\n" % (2 * n)
        finally:
            for c in clients:
                c.close()


def test_an_unfinished_line_holds_up_nobody(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with connect(server.server_address) as slow, connect(server.server_address) as quick:
            slow.send(b"12")  # ...and no newline yet
            assert quick.ask(b"1\n") == b"= 1\n"
            # A second round trip: the loop has surely read slow's bytes by now.
            assert quick.ask(b"1\n") == b"= 2\n"
            partial = sorted(row["partial_input"] for row in server.state_table())
            assert partial == [0, 2], "pending_input() should return the bytes held"
            slow.send(b"3\n")
            assert slow.line() == b"= 123\n"


@pytest.mark.parametrize("bad", [b"abc\n", b"1.5\n", b"\n", b"1 2\n", b"\xff\xfe\n", b"\x00\n"])
def test_not_a_number(exercise, serve, connect, bad):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"5\n") == b"= 5\n"
        assert c.ask(bad) == b"ERR not a number\n"
        assert c.ask(b"1\n") == b"= 6\n", "a bad line changes nothing and the connection stays open"


@pytest.mark.parametrize("newline", [b"", b"\n"])
def test_line_too_long_closes(exercise, serve, connect, newline):
    with serve(exercise.make_server()) as server:
        with connect(server.server_address) as c:
            c.send(b"1" * (exercise.MAX_LINE + 10) + newline)
            try:
                assert c.line() == b"ERR line too long\n"
                assert c.line() == b""
            except ConnectionResetError:
                pass  # closed with our bytes unread: the kernel may reset instead
        with connect(server.server_address) as c:
            assert c.ask(b"1\n") == b"= 1\n"


def test_last_line_at_end_of_file(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        c.send(b"3\n4")
        c.sock.shutdown(socket.SHUT_WR)
        assert [c.line(), c.line(), c.line()] == [b"= 3\n", b"= 7\n", b""]


def test_a_line_of_exactly_max_line_bytes_is_accepted(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"7".rjust(exercise.MAX_LINE - 1, b"0") + b"\n") == b"= 7\n", (
            "MAX_LINE bytes, newline included, is not too long")
        c.send(b"1".rjust(exercise.MAX_LINE, b"0"))  # MAX_LINE bytes, and then end of file
        c.sock.shutdown(socket.SHUT_WR)
        assert c.line() == b"= 8\n", "a last line of MAX_LINE bytes without newline is a line"


def test_the_handler_keeps_its_state_in_slots(exercise):
    # One object per connection, thousands of connections: no per-object __dict__.
    assert exercise.SumHandler.__dictoffset__ == 0, (
        "name every attribute the handler sets in __slots__ (its instances have no __dict__)")
