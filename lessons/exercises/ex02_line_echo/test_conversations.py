"""Generated conversations for exercise 02: your server against the reference solution.

A few lines (bytes that are not UTF-8, spaces, tabs, a ``\\r`` inside, empty lines, QUIT in
any case), cut into pieces anywhere, maybe a last line without newline; then the client
half-closes and reads until the server closes. Nothing is sent after a QUIT.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

TEXT = st.lists(st.sampled_from([b"a", b"Z", b" ", b"\t", b"\r", b"\xff", b"\xc3\xa9", b"q"]),
                max_size=5).map(b"".join) | st.sampled_from([b"quit", b"QUIT", b"Quit", b" quit"])


@st.composite
def conversations(draw: st.DrawFn) -> list[bytes]:
    sent = b""
    for text in draw(st.lists(TEXT, min_size=1, max_size=5)):
        sent += text + draw(st.sampled_from([b"\n", b"\r\n"]))
        if text.rstrip(b"\r").upper() == b"QUIT":
            break
    else:
        sent += draw(st.sampled_from([b"", b"last", b"\xff"]))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(sent) - 1)), max_size=4)))
    return [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)], strict=True) if a < b]


@given(pieces=conversations())
def test_conversations_match_the_reference(exercise, reference, conversation, pieces):
    def converse(address):
        data, end = conversation.talk(address, pieces)
        return data.split(b"\n"), end

    ours = conversation.observe(reference.make_server(), converse)
    theirs = conversation.observe(exercise.make_server(), converse)
    conversation.differ(f"{b''.join(pieces)!r} in {len(pieces)} pieces", ours, theirs)
