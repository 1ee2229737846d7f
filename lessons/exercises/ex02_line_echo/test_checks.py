"""Checks for exercise 02 (see README.md): a numbered, upper-casing line echo.

Each check starts your server on 127.0.0.1 (port 0), talks to it over a real
socket and looks at the replies byte for byte.
"""

import socket

import pytest

pytestmark = pytest.mark.timeout(30)


def test_one_line_is_numbered_and_upper_cased(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"hello\n") == b"1 HELLO\n"


def test_lines_are_numbered_per_connection(exercise, serve, connect):
    with serve(exercise.make_server()) as server:
        for _ in range(2):  # each new connection starts again at 1
            with connect(server.server_address) as client:
                assert client.ask(b"a\n") == b"1 A\n"
                assert client.ask(b"b\n") == b"2 B\n"


def test_several_lines_in_one_send_get_one_reply_each(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        client.send(b"one\ntwo\nthree\n")
        assert [client.line() for _ in range(3)] == [b"1 ONE\n", b"2 TWO\n", b"3 THREE\n"]


def test_a_line_sent_in_pieces_gets_one_reply(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        client.send(b"hel")
        client.send(b"lo wor")
        client.send(b"ld\n")
        assert client.line() == b"1 HELLO WORLD\n", "reply once per line, not once per recv()"


def test_line_endings_are_stripped_and_empty_lines_answered(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"telnet\r\n") == b"1 TELNET\n"
        assert client.ask(b"\n") == b"2 \n"


def test_only_the_line_ending_is_removed(exercise, serve, connect):
    # Spaces and tabs are part of the line: strip() would remove them too.
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"  two  spaces\t\r\n") == b"1   TWO  SPACES\t\n"
        assert client.ask(b" \n") == b"2  \n"


def test_bytes_that_are_not_utf8_pass_unchanged(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"caf\xc3\xa9 \xff\xfe\n") == b"1 CAF\xc3\xa9 \xff\xfe\n"


def test_quit_says_bye_and_closes(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        assert client.ask(b"x\n") == b"1 X\n"
        assert client.ask(b"quit\n") == b"2 BYE\n"
        assert client.line() == b"", "the server should close the connection after QUIT"


def test_last_line_without_newline_is_answered(exercise, serve, connect):
    with serve(exercise.make_server()) as server, connect(server.server_address) as client:
        client.send(b"first\nlast")
        client.sock.shutdown(socket.SHUT_WR)  # end of file: no more lines
        assert client.line() == b"1 FIRST\n"
        assert client.line() == b"2 LAST\n"
        assert client.line() == b""
