"""Checks for exercise 01 (see README.md): an allow-list in verify_request.

Clients connect to the server on 127.0.0.1 *from* different loopback
addresses: Linux routes all of 127.0.0.0/8 to the loopback interface, so a
client socket bound to 127.0.0.2 is a second, distinct client address.
"""

import socket

import pytest

pytestmark = pytest.mark.timeout(30)

OTHER = "127.0.0.2"


def _can_bind(address: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((address, 0))
        except OSError:
            return False
    return True


needs_second_loopback = pytest.mark.skipif(
    not _can_bind(OTHER), reason=f"this system cannot bind {OTHER} (only Linux routes 127/8)")


def test_allowed_client_is_served(exercise, serve, connect):
    with serve(exercise.make_server(["127.0.0.1"])) as server:
        with connect(server.server_address, source="127.0.0.1") as client:
            assert client.line() == b"hello 127.0.0.1\n"
        assert server.served == ["127.0.0.1"]
        assert server.denied == []


@needs_second_loopback
def test_other_client_is_closed_unserved(exercise, serve, connect):
    with serve(exercise.make_server(["127.0.0.1"])) as server:
        with connect(server.server_address, source=OTHER) as client:
            assert client.line() == b"", "a denied client must get nothing but end-of-file"
        assert server.denied == [OTHER]
        assert server.served == [], "the handler must never run for a denied client"


@needs_second_loopback
def test_the_list_decides_not_the_address(exercise, serve, connect):
    with serve(exercise.make_server([OTHER])) as server:
        with connect(server.server_address, source="127.0.0.1") as client:
            assert client.line() == b""
        with connect(server.server_address, source=OTHER) as client:
            assert client.line() == b"hello 127.0.0.2\n"
        assert server.denied == ["127.0.0.1"]


@needs_second_loopback
def test_networks_are_allowed_too(exercise, serve, connect):
    # 127.0.0.0/31 holds 127.0.0.0 and 127.0.0.1 only.
    with serve(exercise.make_server(["127.0.0.0/31"])) as server:
        with connect(server.server_address, source=OTHER) as client:
            assert client.line() == b""
        with connect(server.server_address, source="127.0.0.1") as client:
            assert client.line() == b"hello 127.0.0.1\n"


@needs_second_loopback
def test_server_keeps_serving_after_a_denial(exercise, serve, connect):
    with serve(exercise.make_server(["127.0.0.1"])) as server:
        for _ in range(3):
            with connect(server.server_address, source=OTHER) as client:
                assert client.line() == b""
            with connect(server.server_address, source="127.0.0.1") as client:
                assert client.line() == b"hello 127.0.0.1\n"
        assert server.denied == [OTHER] * 3


def test_empty_list_allows_nobody(exercise, serve, connect):
    with serve(exercise.make_server([])) as server:
        with connect(server.server_address, source="127.0.0.1") as client:
            assert client.line() == b""
        assert server.denied == ["127.0.0.1"]


@pytest.mark.parametrize("entry", ["nonsense", "127.0.0.300", "127.0.0.1/40", ""])
def test_bad_entry_is_refused_before_binding(exercise, entry):
    try:
        server = exercise.make_server([entry])
    except ValueError:
        return  # refused, and (the constructor raised before binding) nothing to close
    server.server_close()
    pytest.fail(f"allowed=[{entry!r}] should raise ValueError")


def test_verify_request_answers_true_or_false(exercise):
    # The contract of verify_request is a bool: the standard module's servers
    # only test it for truth, but a subclass may compare it or pass it on.
    server = exercise.make_server(["127.0.0.1"])
    try:
        assert server.verify_request(None, ("127.0.0.1", 1)) is True
        assert server.verify_request(None, (OTHER, 1)) is False, "return False, not None"
    finally:
        server.server_close()
