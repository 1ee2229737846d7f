"""A small HTTP/1.1 server on StreamRequestHandler: notebook 15's handler.

Theory of operation
-------------------
One handler instance serves one connection; ``handle()`` loops, one turn per
request: read the head (request line and headers), read the body, answer,
and go round again while the connection is kept alive.
"""

from __future__ import annotations

import netserv

MAX_LINE = 8192  # bytes in the request line or one header line (431/400 beyond)
MAX_HEADERS = 100  # header lines per request
MAX_BODY = 1 << 20  # bytes of body we accept (413 beyond)
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           413: "Content Too Large", 431: "Request Header Fields Too Large",
           501: "Not Implemented"}

Head = tuple[str, str, str, dict[str, str]]


class HTTPError(Exception):
    """A request we answer with an error status, then close the connection."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class TinyHTTPHandler(netserv.StreamRequestHandler):
    """HTTP/1.1 with keep-alive: GET /hello, POST /echo. One instance per connection."""

    #: This handler's own steps, for netserv.lab.trace (see "Trace one request").
    traced_hooks = ("handle_one_request", "read_head", "read_body", "respond")
    disable_nagle_algorithm = True  # each response is one write: send it at once
    request_deadline = 10.0  # seconds one read call may take (see below)

    def handle(self) -> None:
        while self.handle_one_request():
            pass

    def handle_one_request(self) -> bool:
        """Serve one request; return True if the connection stays open for another."""
        try:
            head = self.read_head()
            if head is None:
                return False  # the client closed the connection between requests
            method, target, version, headers = head
            body = self.read_body(headers)
        except HTTPError as error:
            self.respond(error.status, f"{REASONS[error.status]}\n".encode(), keep_alive=False)
            return False
        keep_alive = wants_keep_alive(version, headers)
        self.respond(*route(method, target, body), keep_alive=keep_alive)
        return keep_alive

    def read_head(self) -> Head | None:
        """The request line and headers, or None if the connection ended before a request."""
        line = self.rfile.readline(MAX_LINE + 1)
        if not line:
            return None
        if not line.endswith(b"\n"):
            raise HTTPError(400)  # longer than MAX_LINE, or cut by the end of the stream
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
            raise HTTPError(400)
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return parts[0], parts[1], parts[2], headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not line.endswith(b"\n") or not colon or not name.strip():
                raise HTTPError(400)
            headers[name.strip().lower()] = value.strip()
        raise HTTPError(431)

    def read_body(self, headers: dict[str, str]) -> bytes:
        """Exactly Content-Length bytes (none without the header)."""
        if "transfer-encoding" in headers:
            raise HTTPError(501)  # chunked bodies: not in this small server
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise HTTPError(400)
        if int(length) > MAX_BODY:
            raise HTTPError(413)
        body = self.rfile.read(int(length))
        if len(body) != int(length):
            raise HTTPError(400)  # the client closed in the middle of the body
        return body

    def respond(self, status: int, content: bytes, keep_alive: bool) -> None:
        head = [f"HTTP/1.1 {status} {REASONS[status]}", f"Content-Length: {len(content)}",
                "Content-Type: text/plain; charset=utf-8"]
        if not keep_alive:
            head.append("Connection: close")
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content)


def wants_keep_alive(version: str, headers: dict[str, str]) -> bool:
    """HTTP/1.1 keeps the connection unless told "close"; HTTP/1.0 only if told "keep-alive"."""
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    if "close" in tokens:
        return False
    return version == "HTTP/1.1" or "keep-alive" in tokens


def route(method: str, target: str, body: bytes) -> tuple[int, bytes]:
    """The application: (status, content) for a request."""
    if target == "/hello":
        return (200, b"hello, world\n") if method == "GET" else (405, b"GET only\n")
    if target == "/echo":
        return (200, body) if method == "POST" else (405, b"POST only\n")
    return 404, b"not found\n"
