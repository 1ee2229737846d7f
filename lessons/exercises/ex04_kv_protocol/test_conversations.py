"""Generated conversations for exercise 04: your server against the reference solution.

A conversation is a few request lines on one connection (commands in any
case, keys of any case and length, values with spaces, too few or too many
words, empty lines, bytes that are not UTF-8), maybe ended by QUIT, a line
longer than MAX_LINE, or a partial line; the bytes go out cut into pieces
anywhere, then the client half-closes and reads until the server closes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

WORD = st.sampled_from([b"SET", b"set", b"Get", b"GET", b"DEL", b"del", b"QUIT", b"FOO"])
ARG = st.sampled_from([b"k", b"K", b"\xc3\xa9", b"x" * 64, b"x" * 65, b"two words", b"", b"\xff"])
KEY = st.sampled_from([b"k", b"K", b"\xc3\xa9", b"x" * 64, b"x" * 65, b"\xc3\xa9" * 33])
#: A request: well-formed ones more often than not, so that keys get stored and read back.
REQUEST = st.one_of(
    st.tuples(st.sampled_from([b"SET", b"set"]), KEY, st.sampled_from([b"v", b"V", b"a  b", b"v\r", b""])),
    st.tuples(st.sampled_from([b"GET", b"get", b"Del"]), KEY),
    st.tuples(WORD, st.lists(ARG, max_size=3)).map(lambda r: (r[0], *r[1])),
).map(list)


@st.composite
def conversations(draw: st.DrawFn) -> list[bytes]:
    sent = b""
    for words in draw(st.lists(REQUEST | st.lists(ARG, max_size=2), min_size=1, max_size=6)):
        sent += b" ".join(words) + draw(st.sampled_from([b"\n", b"\r\n"]))
        if words == [b"QUIT"]:
            break
    else:
        sent += draw(st.sampled_from([b"", b"GET k", b"x" * 1100 + b"\n"]))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(sent) - 1)), max_size=4)))
    return [sent[a:b] for a, b in zip([0, *cuts], [*cuts, len(sent)], strict=True) if a < b]


@settings(max_examples=100)  # three kinds of request: more examples to meet each
@given(pieces=conversations())
def test_conversations_match_the_reference(exercise, reference, conversation, pieces):
    def converse(address):
        data, end = conversation.talk(address, pieces)
        return data.split(b"\n"), end

    ours = conversation.observe(reference.make_server(), converse)
    theirs = conversation.observe(exercise.make_server(), converse)
    conversation.differ(f"{b''.join(pieces)!r} in {len(pieces)} pieces", ours, theirs)
