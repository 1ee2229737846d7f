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
