"""Generated conversations for exercise 07: your handler against the reference solution.

A conversation is a few lines (numbers with signs and spaces, RESET in any
case, words, empty lines, bytes that are not UTF-8), maybe ended by a line
longer than MAX_LINE, or by a last line without newline; the bytes go out
cut into pieces anywhere, then the client half-closes and reads until the
server closes.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

LINE = st.sampled_from([b"1", b"-5", b" 7 ", b"+3", b"RESET", b"reset", b"x", b"", b"1_0",
                        b"\xff", b"99999999999999999999", b"2 3", b"\t4\r"])


@st.composite
def conversations(draw: st.DrawFn) -> list[bytes]:
    sent = b"".join(line + draw(st.sampled_from([b"\n", b"\r\n"]))
                    for line in draw(st.lists(LINE, min_size=1, max_size=6)))
    sent += draw(st.sampled_from([b"", b"6", b"reset", b"1" * 64 + b"\n", b"1" * 80]))
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
