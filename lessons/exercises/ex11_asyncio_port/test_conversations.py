"""Generated conversations for exercise 11: exercise 02's (see its test_conversations.py),
with each server on its own event loop, started as test_checks.py starts it.
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
def test_conversations_match_the_reference(exercise, reference, conversation, checks, pieces):
    def observe(module):
        with checks.serving(module) as address:
            data, end = conversation.talk(address, pieces)
        return data.split(b"\n"), end

    conversation.differ(f"{b''.join(pieces)!r} in {len(pieces)} pieces",
                        observe(reference), observe(exercise))
