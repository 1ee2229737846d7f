"""Checks for exercise 03 (see README.md): a command service over UDP.

A datagram client sends one request and waits (with a timeout) for one reply.
"""

import contextlib
import socket
import time

import pytest

pytestmark = pytest.mark.timeout(30)

#: Seconds to wait for a reply datagram before the check fails.
REPLY_TIMEOUT = 5.0


@contextlib.contextmanager
def udp_client(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(REPLY_TIMEOUT)
        sock.connect(server.server_address)
        yield sock
    finally:
        sock.close()


def ask(sock, request: bytes) -> bytes:
    sock.send(request)
    return sock.recv(65536)


def test_echo(exercise, serve):
    with serve(exercise.make_server()) as server, udp_client(server) as sock:
        assert ask(sock, b"ECHO hello world") == b"OK hello world"
        assert ask(sock, b"ECHO \xff\x00binary") == b"OK \xff\x00binary"


def test_commands_are_case_insensitive_and_newlines_ignored(exercise, serve):
    with serve(exercise.make_server()) as server, udp_client(server) as sock:
        assert ask(sock, b"echo hi\r\n") == b"OK hi"
        assert ask(sock, b"Echo hi\n") == b"OK hi"


def test_time_is_the_clock(exercise, serve):
    with serve(exercise.make_server()) as server, udp_client(server) as sock:
        before = int(time.time())
        reply = ask(sock, b"TIME")
        after = int(time.time())
        assert reply.startswith(b"OK "), reply
        assert before <= int(reply[3:]) <= after


def test_uptime_counts_from_the_start(exercise, serve):
    started = time.monotonic()
    server = exercise.make_server()
    with serve(server), udp_client(server) as sock:
        reply = ask(sock, b"uptime")
        elapsed = time.monotonic() - started
        assert reply.startswith(b"OK "), reply
        assert 0 <= int(reply[3:]) <= elapsed + 1


def test_unknown_and_empty_requests_are_refused(exercise, serve):
    with serve(exercise.make_server()) as server, udp_client(server) as sock:
        assert ask(sock, b"FETCH /") == b"ERR unknown command"
        assert ask(sock, b"TIME please") == b"ERR unknown command"
        assert ask(sock, b"") == b"ERR empty"
        assert ask(sock, b"\n") == b"ERR empty"


def test_truncated_datagram_is_refused(exercise, serve):
    request = b"ECHO " + b"x" * (2 * exercise.MAX_REQUEST)
    with serve(exercise.make_server()) as server, udp_client(server) as sock:
        assert ask(sock, request) == b"ERR too long", "never act on half a request"
        assert ask(sock, b"ECHO still here") == b"OK still here"


def test_one_reply_per_datagram_in_order(exercise, serve):
    with serve(exercise.make_server()) as server, udp_client(server) as sock:
        for n in range(5):
            sock.send(b"ECHO %d" % n)
        assert [sock.recv(65536) for _ in range(5)] == [b"OK %d" % n for n in range(5)]
