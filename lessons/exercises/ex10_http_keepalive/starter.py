# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 10: an HTTP/1.1 key-value store with keep-alive (StreamRequestHandler).

The application (already written: ``apply()``):

* ``PUT /keys/NAME`` with a body stores the body under NAME:
  ``201 Created`` (a new key) or ``200 OK`` (replaced), body ``stored\\n``;
* ``GET /keys/NAME`` answers ``200 OK`` with the stored bytes as the body,
  or ``404 Not Found``;
* ``DELETE /keys/NAME`` answers ``200 OK`` ``deleted\\n``, or ``404``;
* another path is ``404``, another method ``405 Method Not Allowed``.

The HTTP/1.1 your handler must speak (the TODOs). Every rule here is checked:

* a request is a request line, header lines, an empty line (already read by
  ``read_head()``, which skips empty lines before a request line and joins a
  repeated header's values with ``", "``), then a body of exactly
  ``Content-Length`` bytes, whatever the method (no body without that
  header). A PUT without Content-Length is ``411 Length Required``;
* ``Content-Length`` is ASCII digits only: a sign, a space inside, an empty
  value, or a digit that ``str.isdigit()`` accepts but is not ``0``-``9``
  (``²``) is ``400 Bad Request``; so are differing values (the header
  repeated, or a list ``4, 5``), and ``Transfer-Encoding`` beside
  ``Content-Length``: a server and a proxy that frame such a request
  differently are what request smuggling relies on. A body larger than
  MAX_BODY is ``413 Content Too Large`` (answered before reading it);
* every response is ``HTTP/1.1 <status> <reason>\\r\\n``, a
  ``Content-Length: <n>\\r\\n`` header, ``Connection: close\\r\\n`` when the
  server will close the connection after it (``Connection: keep-alive\\r\\n``
  when it will not), an empty line, and the body;
* keep-alive: after a response, the connection stays open for the next
  request, unless the request said ``Connection: close``. An ``HTTP/1.0``
  request closes the connection unless it said ``Connection: keep-alive``.
  The header's value is a comma-separated list of tokens in any case
  (``Keep-Alive``, ``CLOSE``, ``keep-alive, Upgrade``);
* a request that cannot be read (its request line, a header line, its
  Content-Length) gets its error status, and then the connection is closed
  whatever it asked for: the server no longer knows where the next request
  starts.

Read first: lessons/08_http_on_netserv.md and notebooks/15_http_on_netserv.ipynb;
netserv/handlers.py (StreamRequestHandler: rfile, wfile).
"""

from __future__ import annotations

import threading
from typing import Any

import netserv

#: Longest request line or header line, in bytes.
MAX_LINE = 8192
#: Most header lines in one request.
MAX_HEADERS = 100
#: Largest body accepted, in bytes.
MAX_BODY = 1 << 20
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 411: "Length Required", 413: "Content Too Large"}
PREFIX = "/keys/"


class HTTPError(Exception):
    """A request answered with this error status, after which the connection closes."""

    def __init__(self, status: int) -> None:
        super().__init__(f"{status} {REASONS[status]}")
        self.status = status


class KeyValueHTTPHandler(netserv.StreamRequestHandler):
    """Serves one connection: as many HTTP requests as the client sends on it."""

    disable_nagle_algorithm = True  # one write per response: send it at once

    def handle(self) -> None:
        # TODO: serve requests until the client closes or keep-alive ends
        raise NotImplementedError("TODO: serve requests until the client closes or keep-alive ends")

    def read_head(self) -> tuple[str, str, str, dict[str, str]] | None:
        """(method, path, version, headers) of the next request, or None at end of file.

        Header names are lower-cased; a header that comes more than once has
        its values joined with ", ". Empty lines before the request line are
        skipped. Raises HTTPError(400) for a request that cannot be read.
        """
        for _ in range(MAX_HEADERS):  # empty lines before a request line are skipped
            line = self.rfile.readline(MAX_LINE + 1)
            if line not in (b"\r\n", b"\n"):
                break
        if not line:
            return None
        parts = line.decode("latin-1").split()
        if not line.endswith(b"\n") or len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
            raise HTTPError(400)
        headers: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self.rfile.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return parts[0], parts[1], parts[2], headers
            name, colon, value = line.decode("latin-1").partition(":")
            if not line.endswith(b"\n") or not colon:
                raise HTTPError(400)
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raise HTTPError(400)

    def read_body(self, method: str, headers: dict[str, str]) -> bytes:
        """The request's body: exactly Content-Length bytes from self.rfile."""
        # TODO: exactly Content-Length bytes; else 411/400/413
        raise NotImplementedError("TODO: exactly Content-Length bytes; else 411/400/413")

    def send_response(self, status: int, content: bytes, keep_alive: bool) -> None:
        """Write one whole response: status line, headers, empty line, content."""
        # TODO: status line, Content-Length, Connection: close or keep-alive, body
        raise NotImplementedError("TODO: status line, Content-Length, Connection: close or keep-alive, body")


def wants_keep_alive(version: str, headers: dict[str, str]) -> bool:
    """True if the connection stays open after this request's response."""
    # TODO: 1.1 unless 'close'; 1.0 only if 'keep-alive'
    raise NotImplementedError("TODO: 1.1 unless 'close'; 1.0 only if 'keep-alive'")


def apply(server: Any, method: str, path: str, body: bytes) -> tuple[int, bytes]:
    """The key-value store: (status, content) for one request. Thread-safe."""
    if not path.startswith(PREFIX) or len(path) == len(PREFIX):
        return 404, b"no such path\n"
    key = path[len(PREFIX):]
    with server.lock:
        if method == "GET":
            return (200, server.store[key]) if key in server.store else (404, b"no such key\n")
        if method == "PUT":
            status = 200 if key in server.store else 201
            server.store[key] = body
            return status, b"stored\n"
        if method == "DELETE":
            if server.store.pop(key, None) is None:
                return 404, b"no such key\n"
            return 200, b"deleted\n"
    return 405, b"GET, PUT or DELETE\n"


class KeyValueServer(netserv.ThreadingTCPServer):
    """A thread per connection, sharing one store (a dict and its lock)."""

    daemon_threads = True

    def __init__(self, address: Any, handler: type = KeyValueHTTPHandler) -> None:
        super().__init__(address, handler)
        self.store: dict[str, bytes] = {}
        self.lock = threading.Lock()


def make_server(address: Any = ("127.0.0.1", 0)) -> KeyValueServer:
    """The store's server, bound and listening."""
    return KeyValueServer(address)
