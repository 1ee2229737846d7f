"""Generated conversations for exercise 06: your chat server against the reference solution.

A conversation is a few steps, one at a time: a client joins (good names,
bad ones, a name already taken), a member says a line (empty, not UTF-8,
looking like a server notice), a member leaves; at the end every member
leaves in turn. After each step every other member, and a watcher that
joined first and stays to the end, reads exactly one line (each step of
the protocol sends each other member one), so the order of what each client
reads does not depend on thread timing, and a name is free again once the
watcher has read that its member left; a line sent to the wrong client
shows up as a difference at a later step.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

NAME = st.sampled_from([b"ann", b"bob", b"Al_9", b"a b", b"", b"x" * 17, b"\xc3\xa9", b"ann"])
TEXT = st.sampled_from([b"hi", b"", b"* bob joined", b"\xff", b"a\r", b"two words"])
STEP = st.one_of(st.tuples(st.just("join"), NAME), st.tuples(st.just("say"), st.integers(0, 3), TEXT),
                 st.tuples(st.just("leave"), st.integers(0, 3)))


def run(address, steps, connect):
    """[(step, {member name: the one line it read}) ...] for the conversation *steps*."""
    members, seen = [], []  # members: [(name, client)], the watcher not among them
    watcher = connect(address)

    def others_read(step, but=None):
        seen.append((step, {name: client.line() for name, client in
                            [(b"watcher", watcher), *members] if client is not but}))

    try:
        watcher.send(b"watcher\n")
        seen.append((("join", b"watcher"), {b"watcher": watcher.line()}))
        for step in [*steps, *(("leave", 0) for _ in range(len(steps)))]:
            if step[0] == "join":
                client = connect(address)
                client.send(step[1] + b"\n")
                first = client.line()
                if first.startswith(b"* welcome"):
                    others_read(step)
                    members.append((step[1], client))
                    seen.append((step, {step[1]: first}))
                else:
                    seen.append((step, {step[1]: first + b" / then " + client.line()}))
                    client.close()
            elif members and step[0] == "say":
                name, client = members[step[1] % len(members)]
                client.send(step[2] + b"\n")
                others_read((*step[:2], name, step[2]), but=client)
            elif members:
                name, client = members.pop(step[1] % len(members))
                client.close()
                others_read(("leave", name))
    finally:
        for _, client in members:
            client.close()
        watcher.close()
    return seen


@given(steps=st.lists(STEP, max_size=6))
def test_conversations_match_the_reference(exercise, reference, conversation, connect, steps):
    ours = conversation.observe(reference.make_server(), lambda a: run(a, steps, connect))
    theirs = conversation.observe(exercise.make_server(), lambda a: run(a, steps, connect))
    conversation.differ(f"the steps {steps!r}", ours, theirs)
