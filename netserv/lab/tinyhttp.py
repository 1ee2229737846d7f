"""A small HTTP/1.1 server on StreamRequestHandler: notebook 15's handler.

Theory of operation
-------------------
One handler instance serves one connection. ``handle()`` loops, one turn per
request: read the head (request line and header lines) under one deadline,
work out from the head how long the body is (``body_length()``: the
framing), read exactly that many bytes, answer, and go round again while the
connection is kept alive (``wants_keep_alive()``). The application is one
function, ``route()``.

The framing decides where one request ends and the next begins. When two
programs on the path of a request (a proxy and this server) read the same
bytes with different framing rules, a client can hide a second request
inside the first one's body: request smuggling. So a request whose framing
is in any doubt is refused, and the connection closed after the answer.

The rules (RFC 9112; the sections are in brackets)
---------------------------------------------------
1. One deadline for the whole head: request_deadline, from the moment the
   handler starts waiting for a request to the empty line that ends its
   head, however the bytes trickle in. Past it the connection is closed
   without an answer. The body's read has a deadline of its own.
2. Limits, as http.server's: a request line longer than MAX_LINE is 414, a
   header line longer than MAX_LINE or more than MAX_HEADERS header lines
   is 431.
3. Up to MAX_EMPTY_LINES empty lines before a request line are ignored [2.2];
   more are 400.
4. A header line is ``name: value``; a name is a token, with no whitespace
   before the colon [5.1] and no line folding [5.2]: otherwise 400. Header
   lines with the same name are combined into one comma-separated value.
5. Transfer-Encoding with Content-Length is 400 [6.3 item 3], as is
   Transfer-Encoding in an HTTP/1.0 request [6.1]. Transfer-Encoding alone is
   501: this handler decodes no transfer coding (chunked included) [6.1].
6. Content-Length is a comma-separated list of values (one per header line,
   or several in one line) [6.3 item 5]. Each value must be ASCII digits
   only: not '+5', ' ', '', '5 5', nor a superscript '²' or an Arabic-Indic
   digit five, which str.isdigit() accepts. All values must be the same
   number, which is then the length. Otherwise 400. A length over MAX_BODY
   is 413.
7. The body is read whatever the method (and whatever the route answers),
   so that the next request is found right after it. No Content-Length and
   no Transfer-Encoding: no body.
8. Every error status (4xx, 5xx above) closes the connection, with
   ``Connection: close`` in the response.
9. Connection is a comma-separated list of tokens in any case. ``close`` in
   it closes the connection after the response (which says
   ``Connection: close``). Otherwise HTTP/1.1 keeps the connection open;
   HTTP/1.0 keeps it only with ``keep-alive`` in the list, and the response
   then says ``Connection: keep-alive`` [9.3, appendix C.2.2].

What it does not do: decode chunked bodies, check Host [3.2], answer
``Expect: 100-continue``, pipeline more than it reads (requests sent ahead
are simply read in turn), or drain an unread body before closing after an
error (a client still sending may then see a reset instead of the answer).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import NamedTuple

import netserv
from netserv.handlers import DeadlineReader

#: Bytes in the request line or one header line, its line end included: the
#: longest header lines real clients send (cookies) stay well within it.
MAX_LINE = 8192
#: Header lines per request: http.server's limit too.
MAX_HEADERS = 100
#: Bytes of body accepted (413 beyond): enough for the examples, small enough
#: that a thread per connection cannot be made to hold much memory.
MAX_BODY = 1 << 20
#: Empty lines ignored before a request line: RFC 9112 asks for at least one
#: (a client may end a body with an extra CRLF); a stream of them is not HTTP.
MAX_EMPTY_LINES = 4
#: Seconds the head (and, separately, the body) may take: a slow mobile link
#: sends a few kilobytes of head well within it, and a trickling client holds
#: a thread for seconds, not for a deadline per header line (minutes).
HEAD_DEADLINE = 10.0

REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Content Too Large", 414: "URI Too Long",
           431: "Request Header Fields Too Large", 501: "Not Implemented"}

#: A header name: a token of RFC 9110 section 5.6.2 (no spaces, no separators).
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class HTTPError(Exception):
    """A request answered with this error status, after which the connection closes."""

    def __init__(self, status: int) -> None:
        super().__init__(f"{status} {REASONS[status]}")
        self.status = status


class Head(NamedTuple):
    """A request's head. Header names are lower-cased; repeated ones are
    combined, in order, into one value separated by ", "."""

    method: str
    target: str
    version: str
    headers: dict[str, str]


def body_length(version: str, headers: Mapping[str, str]) -> int:
    """The length of the body that follows this head: the framing (rules 5 to 7).

    Raises HTTPError(400) for a Transfer-Encoding with a Content-Length, for
    a Transfer-Encoding in HTTP/1.0, and for a Content-Length that is not a
    list of one repeated number in ASCII digits; HTTPError(501) for a
    Transfer-Encoding alone (no coding is decoded here); HTTPError(413) for
    a length over MAX_BODY. Returns 0 when neither header is present. Reads
    nothing: the caller reads the body.
    """
    if "transfer-encoding" in headers:
        if "content-length" in headers or version == "HTTP/1.0":
            raise HTTPError(400)  # the ambiguity request smuggling relies on
        raise HTTPError(501)
    if "content-length" not in headers:
        return 0
    lengths = {content_length(value) for value in headers["content-length"].split(",")}
    if len(lengths) != 1:
        raise HTTPError(400)  # two lengths: which one would the next reader believe?
    return lengths.pop()


def content_length(value: str) -> int:
    """One Content-Length value as a number: ASCII digits only, else HTTPError(400);
    over MAX_BODY, HTTPError(413)."""
    value = value.strip(" \t")
    if not (value.isascii() and value.isdigit()):  # isdigit() alone accepts '²'
        raise HTTPError(400)
    if len(value.lstrip("0")) > len(str(MAX_BODY)):
        raise HTTPError(413)  # before int(): it refuses strings of 4,300 digits and more
    if int(value) > MAX_BODY:
        raise HTTPError(413)
    return int(value)


def connection_tokens(headers: Mapping[str, str]) -> set[str]:
    """The Connection header's tokens, lower-cased ('Upgrade, CLOSE' -> {'upgrade', 'close'})."""
    return {token.strip().lower() for token in headers.get("connection", "").split(",")} - {""}


def wants_keep_alive(version: str, headers: Mapping[str, str]) -> bool:
    """HTTP/1.1 keeps the connection unless told 'close'; HTTP/1.0 only if told 'keep-alive'."""
    tokens = connection_tokens(headers)
    if "close" in tokens:
        return False
    return version == "HTTP/1.1" or "keep-alive" in tokens


class TinyHTTPHandler(netserv.StreamRequestHandler):
    """HTTP/1.1 with keep-alive, GET /hello and POST /echo, by the rules above.

    One instance serves one connection. request_deadline bounds the whole
    head (rule 1) and, separately, the body's read; with request_deadline
    None only ``timeout`` (per recv()) bounds the reads. A request whose head
    runs out of time ends the connection through deadline_exceeded(), with
    no answer. An HTTPError is answered with its status and closes the
    connection; any other exception goes to the server's handle_error().
    """

    #: This handler's own steps, for netserv.lab.trace (see "Trace one request").
    traced_hooks = ("handle_one_request", "read_head", "read_body", "respond")
    disable_nagle_algorithm = True  # each response is one write: send it at once
    request_deadline: float | None = HEAD_DEADLINE

    def handle(self) -> None:
        while self.handle_one_request():
            pass

    def handle_one_request(self) -> bool:
        """Serve one request; return True if the connection stays open for another."""
        try:
            head = self.read_head()
            if head is None:
                return False  # the client closed the connection between requests
            body = self.read_body(head)
        except HTTPError as error:
            self.respond(error.status, f"{error}\n".encode(), keep_alive=False)
            return False
        keep_alive = wants_keep_alive(head.version, head.headers)
        status, content = route(head.method, head.target, body)
        self.respond(status, content, keep_alive, head.version)
        return keep_alive

    def read_head(self) -> Head | None:
        """The next request's head, or None if the connection ended before one.

        Raises HTTPError for a head that breaks rules 2 to 4, and
        RequestDeadlineExceeded if it is not complete within request_deadline.
        """
        with self.one_deadline():
            for _ in range(MAX_EMPTY_LINES + 1):
                line = self.read_line(too_long=414)
                if line not in (b"\r\n", b"\n"):
                    break  # a request line, or b"" at the end of the stream
            else:
                raise HTTPError(400)
            if not line:
                return None
            parts = line.decode("latin-1").split()
            if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
                raise HTTPError(400)
            headers: dict[str, str] = {}
            for _ in range(MAX_HEADERS + 1):
                line = self.read_line(too_long=431)
                if line in (b"\r\n", b"\n"):
                    return Head(parts[0], parts[1], parts[2], headers)
                name, colon, value = line.decode("latin-1").partition(":")
                if not colon or not TOKEN.fullmatch(name):
                    raise HTTPError(400)  # no colon, a space before it, or a folded line
                name, value = name.lower(), value.strip(" \t\r\n")
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
            raise HTTPError(431)

    def read_line(self, too_long: int) -> bytes:
        """One line with its line end; b"" at the end of the stream. A line over
        MAX_LINE raises HTTPError(too_long), one cut by the end HTTPError(400)."""
        line = self.rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HTTPError(too_long)
        if line and not line.endswith(b"\n"):
            raise HTTPError(400)
        return line

    def one_deadline(self) -> contextlib.AbstractContextManager[None]:
        """A block whose reads share one request_deadline (none without one)."""
        if isinstance(self.rfile, DeadlineReader):
            return self.rfile.one_deadline()
        return contextlib.nullcontext()

    def read_body(self, head: Head) -> bytes:
        """Exactly body_length() bytes, on every method; HTTPError(400) if the
        client closes first."""
        length = body_length(head.version, head.headers)
        body = self.rfile.read(length)  # one read call: one deadline
        if len(body) != length:
            raise HTTPError(400)
        return body

    def respond(self, status: int, content: bytes, keep_alive: bool,
                version: str = "HTTP/1.1") -> None:
        """Write one whole response; its Connection header says what happens next."""
        head = [f"HTTP/1.1 {status} {REASONS[status]}", f"Content-Length: {len(content)}",
                "Content-Type: text/plain; charset=utf-8"]
        if not keep_alive:
            head.append("Connection: close")
        elif version == "HTTP/1.0":
            head.append("Connection: keep-alive")  # a 1.0 client assumes close otherwise
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)


def route(method: str, target: str, body: bytes) -> tuple[int, bytes]:
    """The application: (status, content) for a request."""
    if target == "/hello":
        return (200, b"hello, world\n") if method == "GET" else (405, b"GET only\n")
    if target == "/echo":
        return (200, body) if method == "POST" else (405, b"POST only\n")
    return 404, b"not found\n"
