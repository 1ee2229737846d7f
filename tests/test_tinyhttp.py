"""Tests of netserv.lab.tinyhttp: notebook 15's HTTP/1.1 handler.

Each test sends raw bytes on a real socket to TinyHTTPHandler on a
ThreadingTCPServer (loopback, port 0) and reads the responses byte for byte.
Where the standard library's http.server has a defined behaviour (the
Connection header, the line and header-count limits), the same conversation
is held with it too and both answers are compared; the framing rules it does
not implement (it never reads a body) are checked against RFC 9112.

"Closed" is proven by end-of-file after the response, "kept open" by a second
request answered on the same connection: no test waits for something not to
happen.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import pathlib
import re
import select
import socket
import socketserver
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

import netserv
from netserv.lab import demo, tinyhttp

#: Seconds a client waits for a response: long on a loaded machine, short
#: enough that a server which never answers fails the test quickly.
CLIENT_TIMEOUT = 5.0

#: The trickle test's head deadline: short, so that the test is quick.
SHORT_DEADLINE = 0.5
#: The trickling client sends one complete header line this often: each line
#: alone is well within the deadline, the head as a whole is not.
TRICKLE_GAP = 0.4 * SHORT_DEADLINE
#: The trickling client gives up after this long: a server bounding only each
#: line would still be reading the head then.
TRICKLE_FOR = 12 * SHORT_DEADLINE

HELLO = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"


class Recording(tinyhttp.TinyHTTPHandler):
    """TinyHTTPHandler that records a deadline cut-off instead of printing it."""

    def deadline_exceeded(self, error: Exception) -> None:
        self.server.cut_off.append(type(error).__name__)


class StdlibHello(http.server.BaseHTTPRequestHandler):
    """The standard library's handler, answering GET /hello as TinyHTTPHandler does."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = b"hello, world\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per request on stderr otherwise


@contextlib.contextmanager
def serving(impl: str = "netserv", handler: type | None = None) -> Iterator[Any]:
    """TinyHTTPHandler ("netserv") or http.server's handler ("stdlib"), served in a thread."""
    if impl == "stdlib":
        cls: type = type("Server", (socketserver.ThreadingTCPServer,), {"daemon_threads": True})
        handler = handler or StdlibHello
    else:
        cls = type("Server", (netserv.ThreadingTCPServer,), {"daemon_threads": True})
        handler = handler or Recording
    server = cls((demo.LOOPBACK, 0), handler)
    server.errors, server.cut_off = [], []
    server.handle_error = lambda request, address: server.errors.append(repr(sys.exc_info()[1]))
    with demo.running(server):
        yield server
    assert server.errors == [], server.errors


class Client:
    """A raw socket and a reader of whole responses on it."""

    def __init__(self, server: Any) -> None:
        self.sock = socket.create_connection(server.server_address, timeout=CLIENT_TIMEOUT)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-cased names, body) of the next response."""
        status_line = self.file.readline()
        assert status_line.startswith(b"HTTP/1."), f"no response, got {status_line!r}"
        headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.file.read(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, body

    def at_eof(self) -> bool:
        """True if the server closed the connection (waits for it, up to the timeout)."""
        try:
            return self.file.read(1) == b""
        except ConnectionResetError:
            return True


@contextlib.contextmanager
def connected(server: Any) -> Iterator[Client]:
    client = Client(server)
    try:
        yield client
    finally:
        client.close()


def refused(request: bytes, impl: str = "netserv") -> tuple[int, dict[str, str], bool]:
    """Send ``request``: (status, headers, closed afterwards) of its one response."""
    with serving(impl) as server, connected(server) as client:
        client.send(request)
        status, headers, _ = client.response()
        return status, headers, client.at_eof()


def kept(request: bytes, impl: str = "netserv") -> tuple[int, dict[str, str], bytes, int]:
    """Send ``request`` then GET /hello on the same connection: the first
    response's (status, headers, body) and the second one's status."""
    with serving(impl) as server, connected(server) as client:
        client.send(request)
        status, headers, body = client.response()
        client.send(HELLO)
        return status, headers, body, client.response()[0]


# -- rule 1: one deadline for the whole head ----------------------------------------

def trickle_head(server: Any) -> float | None:
    """Send a request line, then one short header line every TRICKLE_GAP s.
    Seconds until the server closed (or answered), or None if it was still
    reading after TRICKLE_FOR s. The client paces itself; it never waits for
    the server except through select() on its own socket."""
    with socket.create_connection(server.server_address, timeout=CLIENT_TIMEOUT) as sock:
        start = time.monotonic()
        sock.sendall(b"GET /hello HTTP/1.1\r\n")
        for n in range(tinyhttp.MAX_HEADERS - 1):
            if time.monotonic() - start > TRICKLE_FOR:
                return None
            try:
                sock.sendall(b"X-Trickle-%d: y\r\n" % n)
            except OSError:
                return time.monotonic() - start  # reset: the server closed
            if select.select([sock], [], [], TRICKLE_GAP)[0]:
                return time.monotonic() - start  # end of file or a response
        return None


def test_the_whole_head_has_one_deadline_not_one_per_line() -> None:
    """Each header line arrives well within the deadline; the head as a whole
    does not, and the server closes the connection at about the deadline."""
    handler = type("Short", (Recording,), {"request_deadline": SHORT_DEADLINE})
    with serving(handler=handler) as server:
        closed_after = trickle_head(server)
    assert closed_after is not None, f"the head was still being read after {TRICKLE_FOR} s"
    assert closed_after >= SHORT_DEADLINE  # not before its deadline
    assert server.cut_off == ["RequestDeadlineExceeded"]


def test_the_head_deadline_allows_a_head_sent_at_once_after_a_body() -> None:
    """Keep-alive: the deadline is per request, so a second request is served."""
    status, _, body, second = kept(b"POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi")
    assert (status, body, second) == (200, b"hi", 200)


# -- rule 2: limits on lines and header count (as http.server) ----------------------

@pytest.mark.parametrize("impl", ["netserv", "stdlib"])
def test_a_request_line_too_long_is_414_and_closes(impl: str) -> None:
    long_target = b"/" + b"a" * 70_000  # beyond both servers' limits
    status, _, closed = refused(b"GET " + long_target + b" HTTP/1.1\r\n\r\n", impl)
    assert (status, closed) == (414, True)


@pytest.mark.parametrize("impl", ["netserv", "stdlib"])
def test_a_header_line_too_long_is_431_and_closes(impl: str) -> None:
    status, _, closed = refused(b"GET /hello HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
                                impl)
    assert (status, closed) == (431, True)


@pytest.mark.parametrize("impl", ["netserv", "stdlib"])
def test_too_many_header_lines_is_431_and_closes(impl: str) -> None:
    many = b"".join(b"X-%d: y\r\n" % n for n in range(101))  # both servers allow 100
    status, _, closed = refused(b"GET /hello HTTP/1.1\r\n" + many + b"\r\n", impl)
    assert (status, closed) == (431, True)


# -- rule 3: empty lines before a request line are ignored (RFC 9112 section 2.2) ----

@pytest.mark.parametrize("empty", [b"\r\n", b"\n", b"\r\n\r\n"])
def test_empty_lines_before_a_request_line_are_ignored(empty: bytes) -> None:
    status, _, body, second = kept(empty + HELLO)
    assert (status, body, second) == (200, b"hello, world\n", 200)


def test_endless_empty_lines_are_refused() -> None:
    status, _, closed = refused(b"\r\n" * (tinyhttp.MAX_EMPTY_LINES + 1) + HELLO)
    assert (status, closed) == (400, True)


# -- rule 4: header lines --------------------------------------------------------------

@pytest.mark.parametrize("line", [b"Content-Length : 2", b" Content-Length: 2",
                                  b"Content\tLength: 2", b"no colon"])
def test_a_header_line_with_whitespace_in_its_name_or_no_colon_is_400(line: bytes) -> None:
    """RFC 9112 section 5.1: no whitespace between name and colon; 5.2: no obs-fold."""
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\nhi")
    assert (status, closed) == (400, True)


# -- rule 5: Content-Length -----------------------------------------------------------

@pytest.mark.parametrize("value", [b"\xb2", b"1\xb9", b"+2", b"-2", b"2 2", b"", b" ",
                                   b"0x2", b"2.0", b"2,", b",2"])
def test_a_content_length_that_is_not_ascii_digits_is_400_and_closes(value: bytes) -> None:
    """b'\\xb2' is '\u00b2' in Latin-1: str.isdigit() says True, int() refuses it."""
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\nContent-Length: " + value + b"\r\n\r\nhi")
    assert (status, closed) == (400, True)


@pytest.mark.parametrize("lengths", [[b"2", b"3"], [b"2, 3"], [b"2", b"2, 3"]])
def test_differing_content_lengths_are_400_and_close(lengths: list[bytes]) -> None:
    head = b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\n" + head + b"\r\nhi!")
    assert (status, closed) == (400, True)


@pytest.mark.parametrize("lengths", [[b"2", b"2"], [b"2, 2"], [b"02", b"2"]])
def test_identical_content_lengths_are_one(lengths: list[bytes]) -> None:
    """RFC 9112 section 6.3, item 5: a list of one repeated valid value is that value."""
    head = b"".join(b"Content-Length: " + value + b"\r\n" for value in lengths)
    status, _, body, second = kept(b"POST /echo HTTP/1.1\r\n" + head + b"\r\nhi")
    assert (status, body, second) == (200, b"hi", 200)


def test_a_content_length_of_thousands_of_digits_is_413_not_a_crash() -> None:
    """int() refuses strings of more than 4,300 digits: check the size first."""
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\nContent-Length: " + b"9" * 5000
                                + b"\r\n\r\n")
    assert (status, closed) == (413, True)


def test_a_body_over_the_limit_is_413_and_closes() -> None:
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                                % (tinyhttp.MAX_BODY + 1))
    assert (status, closed) == (413, True)


@pytest.mark.parametrize("method", [b"GET", b"DELETE", b"OPTIONS", b"POST"])
def test_a_body_is_read_on_any_method_so_the_next_request_is_found(method: bytes) -> None:
    """The body is read whatever the method (and the route): the next request
    on the connection starts right after it."""
    body = b"GET /nowhere HTTP/1.1\r\n\r\n"  # a request, if the body were not read
    status, _, _, second = kept(method + b" /hello HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                                % len(body) + body)
    assert second == 200 and status in (200, 405)


# -- rule 6: Transfer-Encoding ---------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    b"transfer-encoding: identity\r\ncontent-length: 3\r\n"])
def test_transfer_encoding_with_content_length_is_400_and_closes(head: bytes) -> None:
    """RFC 9112 section 6.3, item 3: the framing request smuggling relies on."""
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\n" + head + b"\r\n0\r\n\r\n")
    assert (status, closed) == (400, True)


def test_transfer_encoding_alone_is_501_and_closes() -> None:
    """This handler decodes no transfer coding (RFC 9112 section 6.1: 501)."""
    status, _, closed = refused(b"POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"2\r\nhi\r\n0\r\n\r\n")
    assert (status, closed) == (501, True)


def test_transfer_encoding_in_http_1_0_is_400_and_closes() -> None:
    """RFC 9112 section 6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing."""
    status, _, closed = refused(b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"
                                b"2\r\nhi\r\n0\r\n\r\n")
    assert (status, closed) == (400, True)


# -- rule 7: the Connection header and keep-alive ---------------------------------------

@pytest.mark.parametrize("impl", ["netserv", "stdlib"])
@pytest.mark.parametrize("value", [b"close", b"CLOSE", b"Close"])
def test_connection_close_in_any_case_closes(impl: str, value: bytes) -> None:
    header = b"connection: " + value + b"\r\n"
    status, headers, closed = refused(b"GET /hello HTTP/1.1\r\n" + header + b"\r\n", impl)
    assert (status, closed) == (200, True)
    if impl == "netserv":  # http.server leaves the header to the application
        assert headers.get("connection") == "close"


@pytest.mark.parametrize("value", [b"Upgrade, close", b"close, Upgrade", b"TE,CLOSE"])
def test_connection_close_in_a_list_closes(value: bytes) -> None:
    status, headers, closed = refused(b"GET /hello HTTP/1.1\r\nConnection: " + value + b"\r\n\r\n")
    assert (status, headers.get("connection"), closed) == (200, "close", True)


@pytest.mark.parametrize("impl", ["netserv", "stdlib"])
def test_http_1_0_without_keep_alive_closes(impl: str) -> None:
    status, _, closed = refused(b"GET /hello HTTP/1.0\r\n\r\n", impl)
    assert (status, closed) == (200, True)


@pytest.mark.parametrize("impl", ["netserv", "stdlib"])
def test_http_1_0_with_keep_alive_stays_open(impl: str) -> None:
    status, _, _, second = kept(b"GET /hello HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", impl)
    assert (status, second) == (200, 200)


@pytest.mark.parametrize("value", [b"keep-alive", b"KEEP-ALIVE", b"keep-alive, Upgrade"])
def test_http_1_0_keep_alive_is_answered_with_connection_keep_alive(value: bytes) -> None:
    """RFC 9112 appendix C.2.2: the 1.0 client learns the connection stays open."""
    status, headers, _, second = kept(b"GET /hello HTTP/1.0\r\nConnection: " + value
                                      + b"\r\n\r\n")
    assert (status, headers.get("connection"), second) == (200, "keep-alive", 200)


def test_http_1_1_keep_alive_needs_no_connection_header() -> None:
    status, headers, _, second = kept(HELLO)
    assert (status, headers.get("connection"), second) == (200, None, 200)


# -- the rules, as the course states them ----------------------------------------------

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIRST_RULE = "1. One deadline for the whole head"


def stated_rules(text: str) -> str:
    """The numbered list of rules that starts with FIRST_RULE, up to the next empty line."""
    start = text.index(FIRST_RULE)
    return " ".join(text[start:text.index("\n\n", start)].split())


def test_lesson_8_and_notebook_15_state_the_same_rules_as_the_module() -> None:
    notebook = json.loads((ROOT / "notebooks" / "15_http_on_netserv.ipynb").read_text("utf-8"))
    cells = ["".join(cell["source"]) for cell in notebook["cells"]
             if cell["cell_type"] == "markdown"]
    in_notebook = stated_rules(next(cell for cell in cells if FIRST_RULE in cell))
    in_lesson = stated_rules((ROOT / "lessons" / "08_http_on_netserv.md").read_text("utf-8"))
    assert in_lesson == in_notebook
    numbers = re.findall(r"(?:^|\n)(\d+)\. ", tinyhttp.__doc__ or "")
    assert numbers == [str(n) for n in range(1, 10)]  # the module's nine rules
    assert re.findall(r"(?:^| )(\d)\. [A-Z`]", in_notebook) == numbers
