"""What the load generator sends, and how it knows a reply is whole and right.

Theory of operation
-------------------
A stream client sends requests and reads replies from one byte stream; it
needs two things from the protocol: the bytes of request number ``seq``, and,
given the bytes received so far, where the next reply ends and whether it is
the right one. Two protocols:

* ``line`` (:class:`LineProtocol`): a request is ``payload`` bytes, its
  sequence number first (zero-padded decimal), filler, a newline. The server echoes
  it; the reply is whole when as many bytes arrived, and right when they are
  the request's own bytes. Datagram clients send the same requests and match
  each reply to its request by the number it starts with (:func:`untag`).
* ``http`` (:class:`HttpProtocol`): a request is ``GET path HTTP/1.1`` with a
  Host header, on a keep-alive connection (``Connection: close`` when each
  request has a connection of its own). A reply is a status line, headers
  ending in an empty line, and a body of Content-Length bytes. Replies come
  back in the order of the requests (HTTP/1.1 pipelining), so no number is
  needed. A status of 400 or more counts as an ``http_status`` error. A
  response without Content-Length (chunked, or "until the connection
  closes") cannot be delimited on a persistent connection: it is refused as
  a ``protocol`` error, and the connection is dropped.

Tagging a request with its sequence number happens in one place,
``LineProtocol.request``; :func:`untag` reads the number back.
"""

from __future__ import annotations

from .spec import SEQ_DIGITS, Address, LoadSpec

__all__ = [
    "INCOMPLETE",
    "UNUSABLE",
    "HttpProtocol",
    "LineProtocol",
    "Protocol",
    "make_protocol",
    "untag",
]

_MODULUS = 10 ** SEQ_DIGITS
#: parse() results: the reply is not complete yet / the stream cannot go on.
INCOMPLETE = -1
UNUSABLE = -2
#: Longest header block accepted in an HTTP response: beyond it the reply is
#: not the small response a benchmark should be timing.
MAX_HEADER_BYTES = 65536
#: Statuses with no body whatever their headers say (RFC 9112, 6.3).
_NO_BODY = (204, 304)


def untag(data: bytes) -> int:
    """The sequence number a reply starts with (modulo 10**SEQ_DIGITS), or -1."""
    head = data[:SEQ_DIGITS]
    return int(head) if len(head) == SEQ_DIGITS and head.isdigit() else -1


class LineProtocol:
    """Fixed-size echoed lines: the sequence number, filler, newline."""

    name = "line"

    def __init__(self, payload: int) -> None:
        self.filler = b"x" * (payload - SEQ_DIGITS - 1) + b"\n"
        self.size = payload
        self.note: str | None = None
        self.closes = False  # an echo server never announces a close

    def request(self, seq: int) -> bytes:
        """Request ``seq``: the one place a sequence number is written into a request."""
        return b"%0*d%b" % (SEQ_DIGITS, seq % _MODULUS, self.filler)

    def parse(self, buf: bytes, start: int, request: bytes) -> tuple[int, str | None]:
        """(end of the reply starting at ``start``, or INCOMPLETE; error kind or None)."""
        end = start + self.size
        if len(buf) < end:
            return INCOMPLETE, None
        return end, (None if buf.startswith(request, start) else "mismatch")


class HttpProtocol:
    """HTTP/1.1 GET requests; replies delimited by Content-Length."""

    name = "http"

    def __init__(self, address: Address, path: str, close_each: bool) -> None:
        if isinstance(address, str):
            host = "localhost"  # a Unix socket: any Host will do
        elif ":" in address[0]:
            host = f"[{address[0]}]:{address[1]}"  # IPv6 literal
        else:
            host = f"{address[0]}:{address[1]}"
        close = b"Connection: close\r\n" if close_each else b""
        self.message = (b"GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: netserv-load\r\n%s\r\n"
                        % (path.encode("ascii"), host.encode("ascii"), close))
        self.note: str | None = None  # the first reason a response was refused
        self.closes = False  # the last response parsed said "Connection: close"

    def request(self, seq: int) -> bytes:
        return self.message  # in order: no number needed, and no bytes built per request

    def parse(self, buf: bytes, start: int, request: bytes) -> tuple[int, str | None]:
        """(end of the response starting at ``start``, INCOMPLETE or UNUSABLE;
        error kind or None)."""
        head_end = buf.find(b"\r\n\r\n", start)
        if head_end < 0:
            if len(buf) - start > MAX_HEADER_BYTES:
                return self._refuse(f"response headers longer than {MAX_HEADER_BYTES} bytes")
            return INCOMPLETE, None
        head = buf[start:head_end].lower()
        status_line, _, fields = head.partition(b"\r\n")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"http/1.") or not parts[1].isdigit():
            return self._refuse(f"not an HTTP/1.x status line: {status_line[:60]!r}")
        status = int(parts[1])
        self.closes = (b"\r\nconnection: close" in head
                       or (parts[0] == b"http/1.0" and b"\r\nconnection: keep-alive" not in head))
        length = 0
        if status not in _NO_BODY and not 100 <= status < 200:
            found = None
            for field in fields.split(b"\r\n"):
                name, _, value = field.partition(b":")
                name = name.strip()
                if name == b"transfer-encoding":
                    return self._refuse("chunked (Transfer-Encoding) responses are not "
                                        "supported: the server must send Content-Length")
                if name == b"content-length" and value.strip().isdigit():
                    found = int(value)
            if found is None:
                return self._refuse("a response without Content-Length cannot be delimited "
                                    "on a keep-alive connection")
            length = found
        end = head_end + 4 + length
        if len(buf) < end:
            return INCOMPLETE, None
        return end, ("http_status" if status >= 400 else None)

    def _refuse(self, reason: str) -> tuple[int, str]:
        if self.note is None:
            self.note = reason
        return UNUSABLE, "protocol"


Protocol = LineProtocol | HttpProtocol


def make_protocol(spec: LoadSpec) -> Protocol:
    """The protocol object of a run."""
    if spec.protocol == "http":
        return HttpProtocol(spec.address, spec.path, spec.per_connection)
    return LineProtocol(spec.payload)
