"""Checks for exercise 10 (see README.md): an HTTP/1.1 key-value store with keep-alive.

Each check starts your server on 127.0.0.1 (port 0) and speaks HTTP to it:
with http.client, the standard library's client, and with a raw socket that
reads each response byte for byte (status line, headers, Content-Length body).
"""

from __future__ import annotations

import http.client
import socket

import pytest

pytestmark = pytest.mark.timeout(60)

#: Seconds a check waits for a response.
TIMEOUT = 5.0


class Raw:
    """A raw HTTP client: send bytes, read whole responses, see the connection close."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=TIMEOUT)
        self.file = self.sock.makefile("rb")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body) of the next response."""
        status_line = self.file.readline()
        assert status_line, "the server closed the connection instead of responding"
        assert status_line.startswith(b"HTTP/1.1 ") and status_line.endswith(b"\r\n"), status_line
        headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        assert "content-length" in headers, f"no Content-Length in the response: {headers}"
        body = self.file.read(int(headers["content-length"]))
        return int(status_line.split()[1]), headers, body

    def closed_by_server(self) -> bool:
        """True if the server closed its side (end of file, or a reset)."""
        try:
            return self.file.read(1) == b""
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Raw:  # noqa: PYI034 - a plain class, never subclassed
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def request(method: str, path: str, body: bytes = b"", version: str = "HTTP/1.1",
            extra: str = "") -> bytes:
    head = f"{method} {path} {version}\r\nHost: test\r\n{extra}"
    if body or method == "PUT":
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def test_put_then_get_on_one_connection(exercise, serve):
    with serve(exercise.make_server()) as server:
        client = http.client.HTTPConnection(*server.server_address, timeout=TIMEOUT)
        try:
            client.request("PUT", "/keys/colour", body=b"blue")
            response = client.getresponse()
            assert (response.status, response.read()) == (201, b"stored\n")
            sock = client.sock
            client.request("GET", "/keys/colour")
            response = client.getresponse()
            assert (response.status, response.read()) == (200, b"blue")
            assert client.sock is sock, "the second request needed a new connection: keep it open"
        finally:
            client.close()


def test_several_requests_stay_on_one_connection(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("PUT", "/keys/a", b"1"))
        assert raw.response()[0] == 201
        raw.send(request("PUT", "/keys/a", b"22"))
        assert raw.response()[0] == 200, "a replaced key is 200, a new one 201"
        raw.send(request("GET", "/keys/a"))
        status, headers, body = raw.response()
        assert (status, body) == (200, b"22")
        assert headers.get("connection", "").lower() != "close", "keep-alive is HTTP/1.1's default"


def test_requests_sent_together_are_answered_in_order(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("PUT", "/keys/k", b"GET /keys/k HTTP/1.1\r\n\r\n")
                 + request("GET", "/keys/k") + request("DELETE", "/keys/k"))
        assert raw.response()[0] == 201
        assert raw.response()[2] == b"GET /keys/k HTTP/1.1\r\n\r\n", (
            "the body is exactly Content-Length bytes, whatever they contain")
        assert raw.response()[:3:2] == (200, b"deleted\n")


def test_a_body_in_pieces_with_newlines(exercise, serve):
    value = b"line one\nline two\r\n\x00\xff"
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        whole = request("PUT", "/keys/blob", value)
        raw.send(whole[:-15])
        raw.send(whole[-15:])
        assert raw.response()[0] == 201
        raw.send(request("GET", "/keys/blob"))
        assert raw.response()[2] == value


def test_connection_close_is_honoured(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("GET", "/keys/none", extra="Connection: close\r\n"))
        status, headers, _body = raw.response()
        assert status == 404
        assert headers.get("connection", "").lower() == "close", "say Connection: close"
        assert raw.closed_by_server(), "the server should close after Connection: close"


def test_http_1_0_closes_unless_asked_to_keep_alive(exercise, serve):
    with serve(exercise.make_server()) as server:
        with Raw(server.server_address) as raw:
            raw.send(request("GET", "/keys/x", version="HTTP/1.0"))
            status, headers, _ = raw.response()
            assert status == 404 and headers.get("connection", "").lower() == "close"
            assert raw.closed_by_server(), "HTTP/1.0 closes the connection by default"
        with Raw(server.server_address) as raw:
            raw.send(request("GET", "/keys/x", version="HTTP/1.0",
                             extra="Connection: keep-alive\r\n"))
            assert raw.response()[0] == 404
            raw.send(request("GET", "/keys/y", version="HTTP/1.0", extra="Connection: close\r\n"))
            assert raw.response()[0] == 404, "Connection: keep-alive kept it open for another"


def test_put_without_content_length_is_411_and_closes(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(b"PUT /keys/a HTTP/1.1\r\nHost: test\r\n\r\nvalue")
        status, headers, _ = raw.response()
        assert status == 411 and headers.get("connection", "").lower() == "close"
        assert raw.closed_by_server()


def test_a_bad_request_line_is_400_and_closes(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(b"HELLO\r\n\r\n")
        status, headers, _ = raw.response()
        assert status == 400 and headers.get("connection", "").lower() == "close"
        assert raw.closed_by_server()


def test_delete_and_missing_keys(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("PUT", "/keys/gone", b"x"))
        assert raw.response()[0] == 201
        raw.send(request("DELETE", "/keys/gone"))
        assert raw.response()[:3:2] == (200, b"deleted\n")
        raw.send(request("GET", "/keys/gone"))
        assert raw.response()[0] == 404
        raw.send(request("POST", "/keys/gone", b"x"))
        assert raw.response()[0] == 405


def refused(raw: Raw, status: int, why: str) -> None:
    """The next response is *status* with Connection: close, and the server closes."""
    got, headers, _ = raw.response()
    assert got == status, f"{why}: expected {status}, got {got}"
    assert headers.get("connection", "").lower() == "close", f"{why}: say Connection: close"
    assert raw.closed_by_server(), f"{why}: then close the connection"


@pytest.mark.parametrize("value", [b"\xb2", b"+4", b"-4", b"", b"4 4", b"0x4", b"4.0"],
                         ids=["superscript-two", "plus", "minus", "empty", "space", "hex", "dot"])
def test_content_length_is_ascii_digits_only(exercise, serve, value):
    # b"\xb2" is "²" in latin-1: "²".isdigit() is True, int("²") raises ValueError.
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(b"PUT /keys/a HTTP/1.1\r\nContent-Length: " + value + b"\r\n\r\nblue")
        refused(raw, 400, f"Content-Length: {value!r}")


@pytest.mark.parametrize("lengths", [b"Content-Length: 4\r\nContent-Length: 5\r\n",
                                     b"Content-Length: 4, 5\r\n"], ids=["repeated", "list"])
def test_differing_content_lengths_are_400_and_close(exercise, serve, lengths):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(b"PUT /keys/a HTTP/1.1\r\n" + lengths + b"\r\nblue!")
        refused(raw, 400, "two different lengths: which one ends the body?")


def test_transfer_encoding_beside_content_length_is_400_and_close(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(b"PUT /keys/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n"
                 b"\r\nblue")
        refused(raw, 400, "Transfer-Encoding and Content-Length: two framings")


def test_a_body_above_the_limit_is_413_and_close(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("PUT", "/keys/small", b"x" * exercise.MAX_BODY))
        assert raw.response()[0] == 201, "a body of exactly MAX_BODY bytes is accepted"
        too_big = exercise.MAX_BODY + 1
        raw.send(b"PUT /keys/a HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % too_big)
        refused(raw, 413, f"Content-Length: {too_big} (MAX_BODY + 1), sent before any body")


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE", "PATCH"])
def test_a_body_is_read_on_any_method(exercise, serve, method):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("PUT", "/keys/k", b"v") + request(method, "/keys/k", b"GET /x\r\n")
                 + request("GET", "/keys/k"))
        assert raw.response()[0] == 201
        expected = {"POST": 405, "PATCH": 405, "GET": 200, "DELETE": 200}[method]
        assert raw.response()[0] == expected, f"{method} with a body"
        status, _, body = raw.response()
        assert (status, body) == ((200, b"v") if method != "DELETE" else (404, b"no such key\n")), (
            f"the GET after a {method} with a body: read the body, whatever the method")


@pytest.mark.parametrize("value", ["Close", "CLOSE", "keep-alive, close", "Upgrade,Close"])
def test_connection_close_in_any_case_and_in_a_list(exercise, serve, value):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("GET", "/keys/x", extra=f"Connection: {value}\r\n"))
        assert raw.response()[0] == 404
        assert raw.closed_by_server(), f"Connection: {value} asks the server to close"


@pytest.mark.parametrize("value", ["keep-alive", "Keep-Alive", "KEEP-ALIVE", "foo, keep-alive"])
def test_http_1_0_keep_alive_is_answered_and_kept(exercise, serve, value):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("GET", "/keys/x", version="HTTP/1.0", extra=f"Connection: {value}\r\n"))
        status, headers, _ = raw.response()
        assert status == 404
        assert headers.get("connection", "").lower() == "keep-alive", (
            "answer an HTTP/1.0 keep-alive request with Connection: keep-alive")
        raw.send(request("GET", "/keys/y", version="HTTP/1.0"))
        assert raw.response()[0] == 404, f"Connection: {value} kept it open for another"
        assert raw.closed_by_server(), "and a later HTTP/1.0 request without it closes"


def test_empty_lines_before_a_request_are_skipped(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(request("PUT", "/keys/k", b"v") + b"\r\n\r\n" + request("GET", "/keys/k"))
        assert raw.response()[0] == 201
        assert raw.response()[:3:2] == (200, b"v"), "empty lines before a request line: skip them"


def test_the_same_length_twice_is_one_length(exercise, serve):
    with serve(exercise.make_server()) as server, Raw(server.server_address) as raw:
        raw.send(b"PUT /keys/a HTTP/1.1\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nblue"
                 + request("GET", "/keys/a"))
        assert raw.response()[0] == 201
        assert raw.response()[:3:2] == (200, b"blue")


def test_a_body_cut_short_by_the_client_is_400_and_not_stored(exercise, serve):
    with serve(exercise.make_server()) as server:
        with Raw(server.server_address) as raw:
            raw.send(b"PUT /keys/cut HTTP/1.1\r\nContent-Length: 10\r\n\r\nonly4")
            raw.sock.shutdown(socket.SHUT_WR)  # the client gives up half-way through the body
            refused(raw, 400, "a body shorter than its Content-Length")
        with Raw(server.server_address) as raw:
            raw.send(request("GET", "/keys/cut"))
            assert raw.response()[0] == 404, "half a body must not be stored"
