"""Generated conversations for exercise 10: your server against the reference solution.

A conversation is a few pipelined requests on one connection (any method,
bodies holding newlines and request-like bytes, headers in any case, the
Connection header as a list, empty lines before a request, HTTP/1.0 and
1.1), maybe ended by one the server must refuse; the bytes go out cut into
pieces at arbitrary places, then the client half-closes. What the client
reads back (status, Connection header and body of each response, and
whether the server closed) must be the reference's. A request after one
that closes the connection is never sent: its bytes would only be reset.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

CONNECTION = [None, "close", "Close", "keep-alive", "Keep-Alive", "keep-alive, close",
              "Upgrade, KEEP-ALIVE", "foo"]
BODY = st.binary(max_size=12) | st.sampled_from([b"a\nb", b"GET /keys/a HTTP/1.1\r\n\r\n", b"\r\n"])
REFUSED = [  # the head of a request the server must refuse, then close
    b"PUT /keys/a HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n",
    b"PUT /keys/a HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
    b"POST /keys/a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"PUT /keys/a HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n",
    b"PUT /keys/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
    b"PUT /keys/a HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n",
    b"PUT /keys/a HTTP/1.1\r\n\r\n",
    b"NONSENSE\r\n\r\n",
]


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(one request's bytes, whether it closes the connection)."""
    method = draw(st.sampled_from(["GET", "PUT", "DELETE", "POST"]))
    path = draw(st.sampled_from(["/keys/a", "/keys/b", "/keys/A", "/other", "/keys/"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    connection = draw(st.sampled_from(CONNECTION))
    head = draw(st.sampled_from(["", "\r\n", "\n\r\n"])) + f"{method} {path} {version}\r\n"
    if connection is not None:
        head += f"{draw(st.sampled_from(['Connection', 'connection']))}: {connection}\r\n"
    body = draw(BODY) if method in ("PUT", "POST") or draw(st.booleans()) else b""
    if body or method == "PUT":
        name = draw(st.sampled_from(["Content-Length", "content-length", "CONTENT-LENGTH"]))
        head += f"{name}: {len(body)}\r\n"
    tokens = {token.strip().lower() for token in (connection or "").split(",")}
    closes = "close" in tokens or (version == "HTTP/1.0" and "keep-alive" not in tokens)
    return head.encode("latin-1") + b"\r\n" + body, closes


@st.composite
def conversations(draw: st.DrawFn) -> list[bytes]:
    """The pieces a client sends: some requests, cut anywhere."""
    sent = b""
    for data, closes in draw(st.lists(requests(), min_size=1, max_size=4)):
        sent += data
        if closes:
            break
    else:
        if draw(st.booleans()):
            sent += draw(st.sampled_from(REFUSED))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(sent) - 1)), max_size=4)))
    return [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)], strict=True) if a < b]


def responses(data: bytes) -> list[tuple[bytes, bytes, bytes]]:
    """(status, Connection header, body) of each response in *data*; unreadable rest kept."""
    found = []
    while data:
        head, blank, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        headers = dict(line.lower().partition(b":")[::2] for line in lines[1:])
        length = headers.get(b"content-length", b"").strip()
        if not blank or not length.isdigit():
            found.append((b"unreadable", b"", data))
            break
        status = lines[0].split(b" ")[1] if lines[0].count(b" ") >= 2 else lines[0]
        found.append((status, headers.get(b"connection", b"").strip(), rest[:int(length)]))
        data = rest[int(length):]
    return found


@given(pieces=conversations())
def test_conversations_match_the_reference(exercise, reference, conversation, pieces):
    def converse(address):
        data, end = conversation.talk(address, pieces)
        return responses(data), end

    ours = conversation.observe(reference.make_server(), converse)
    theirs = conversation.observe(exercise.make_server(), converse)
    conversation.differ(f"{b''.join(pieces)!r} in {len(pieces)} pieces", ours, theirs)
