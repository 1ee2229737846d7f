"""Checks for exercise 04 (see README.md): a key-value protocol.

Good requests first, then every kind of bad input; after each bad request
the check sends a good one on the same connection, to prove it still works.
"""

import socket

import pytest

pytestmark = pytest.mark.timeout(30)


def test_set_get_del(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"GET colour\n") == b"NOT_FOUND\n"
        assert c.ask(b"SET colour blue\n") == b"OK\n"
        assert c.ask(b"GET colour\n") == b"VALUE blue\n"
        assert c.ask(b"SET colour dark red\n") == b"OK\n"
        assert c.ask(b"GET colour\n") == b"VALUE dark red\n", "the value is the rest of the line"
        assert c.ask(b"DEL colour\n") == b"DELETED\n"
        assert c.ask(b"DEL colour\n") == b"NOT_FOUND\n"
        assert c.ask(b"GET colour\n") == b"NOT_FOUND\n"


def test_commands_any_case_keys_exact_crlf_ok(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"set Key v\r\n") == b"OK\n"
        assert c.ask(b"Get Key\r\n") == b"VALUE v\n"
        assert c.ask(b"GET key\n") == b"NOT_FOUND\n"
        assert c.ask("SET clé café ☕\n".encode()) == b"OK\n"
        assert c.ask("GET clé\n".encode()) == "VALUE café ☕\n".encode()


def test_store_is_shared_between_connections(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with connect(server.server_address) as a, connect(server.server_address) as b:
            assert a.ask(b"SET shared 1\n") == b"OK\n"
            assert b.ask(b"GET shared\n") == b"VALUE 1\n"


def test_pipelined_and_split_requests(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        c.send(b"SET a 1\nSET b 2\nGET a\nGET b\n")
        assert [c.line() for _ in range(4)] == [b"OK\n", b"OK\n", b"VALUE 1\n", b"VALUE 2\n"]
        c.send(b"GE")
        c.send(b"T a")
        c.send(b"\n")
        assert c.line() == b"VALUE 1\n"


@pytest.mark.parametrize("request_, reply", [
    (b"\n", b"ERR empty line\n"),
    (b"\r\n", b"ERR empty line\n"),
    (b"FETCH a\n", b"ERR unknown command\n"),
    (b"SETA a 1\n", b"ERR unknown command\n"),
    (b"GET\n", b"ERR usage: GET <key>\n"),
    (b"GET a b\n", b"ERR usage: GET <key>\n"),
    (b"DEL\n", b"ERR usage: DEL <key>\n"),
    (b"SET a\n", b"ERR usage: SET <key> <value>\n"),
    (b"SET\n", b"ERR usage: SET <key> <value>\n"),
    (b"QUIT now\n", b"ERR usage: QUIT\n"),
    (b"GET " + b"k" * 65 + b"\n", b"ERR key too long\n"),
    (b"SET \xff\xfe garbage\n", b"ERR not utf-8\n"),
    (b"\x00\x01\x02\x80\n", b"ERR not utf-8\n"),
])
def test_bad_request_gets_an_error_and_the_connection_stays_usable(
        exercise, serve, connect, request_, reply):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(request_) == reply
        assert c.ask(b"SET after ok\n") == b"OK\n"
        assert c.ask(b"GET after\n") == b"VALUE ok\n"


def test_longest_key_and_line_are_accepted(exercise, serve, connect):
    key = b"k" * exercise.MAX_KEY
    prefix = b"SET " + key + b" "
    value = b"v" * (exercise.MAX_LINE - len(prefix) - 1)  # the whole line is MAX_LINE bytes
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(prefix + value + b"\n") == b"OK\n"
        assert c.ask(b"GET " + key + b"\n") == b"VALUE " + value + b"\n"


def test_overlong_line_is_refused_and_closed(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        c.send(b"SET big " + b"x" * exercise.MAX_LINE + b"\n")
        assert c.line() == b"ERR line too long\n"
        assert c.line() == b"", "after an overlong line the server closes the connection"
        with connect(server.server_address) as c2:  # the server itself is fine
            assert c2.ask(b"GET big\n") == b"NOT_FOUND\n"


def test_endless_line_is_cut_off(exercise, serve, connect):
    # No newline ever: the server must stop reading at MAX_LINE, not hold it all.
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        try:
            c.send(b"x" * (exercise.MAX_LINE * 64))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close while we still send: that is allowed
        try:
            assert c.line() == b"ERR line too long\n"
        except ConnectionResetError:
            pass  # unread bytes at close make the kernel reset: the reply may be lost


def test_quit_closes(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"quit\n") == b"BYE\n"
        assert c.line() == b""


def test_client_closing_mid_request_is_no_error(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        with connect(server.server_address) as c:
            assert c.ask(b"SET a 1\n") == b"OK\n"
            c.send(b"SET half")  # and goes away
            c.sock.shutdown(socket.SHUT_WR)
            assert c.line() == b"", "a request cut by end-of-file is not a request"
        with connect(server.server_address) as c:
            assert c.ask(b"GET half\n") == b"NOT_FOUND\n"


def test_key_length_is_counted_in_utf8_bytes(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        fits, too_long = "é" * (exercise.MAX_KEY // 2), "é" * (exercise.MAX_KEY // 2 + 1)
        assert c.ask(f"SET {fits} v\n".encode()) == b"OK\n"
        assert c.ask(f"SET {too_long} v\n".encode()) == b"ERR key too long\n", (
            f"{len(too_long)} characters, {len(too_long.encode())} bytes: MAX_KEY counts bytes")


def test_only_one_line_ending_is_removed(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"SET k v\r\r\n") == b"OK\n"
        assert c.ask(b"GET k\n") == b"VALUE v\r\n", "one \\n, and one \\r before it: no more"


def test_an_empty_value_is_a_usage_error(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        assert c.ask(b"SET k \n") == b"ERR usage: SET <key> <value>\n", "SET k with no value"
        assert c.ask(b"GET k\n") == b"NOT_FOUND\n"


def test_a_line_one_byte_too_long_is_refused_whole(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as c:
        line = b"SET big " + b"x" * (exercise.MAX_LINE - 8) + b"\n"  # MAX_LINE + 1 bytes
        c.send(line)
        assert c.line() == b"ERR line too long\n"
        assert c.line() == b"", "after an overlong line the server closes the connection"
        with connect(server.server_address) as c2:
            assert c2.ask(b"GET big\n") == b"NOT_FOUND\n", "an overlong line is not executed"
