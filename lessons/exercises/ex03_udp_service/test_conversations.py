"""Generated conversations for exercise 03: your service against the reference solution.

A conversation is a few datagrams, each answered before the next is sent:
ECHO with any bytes (none, newlines, bytes that are not UTF-8), commands in
any case, TIME and UPTIME with an argument, unknown commands, empty
datagrams, and datagrams longer than max_packet_size. TIME and UPTIME
without argument are left to test_checks.py: their answers change with the
clock.
"""

from __future__ import annotations

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)

COMMAND = st.sampled_from([b"ECHO", b"echo", b"Echo", b"TIME", b"UPTIME", b"FOO", b""])
DATAGRAM = st.tuples(COMMAND, st.sampled_from([b"", b" ", b" hi", b" a b", b" \xff", b"\r\n",
                                               b" x\n", b" \r\n\r\n", b" " + b"y" * 600]))


def ask_each(address, datagrams, timeout):
    replies = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect(address)
        for datagram in datagrams:
            sock.send(datagram)
            try:
                replies.append(sock.recv(65536))
            except TimeoutError:
                replies.append(f"no reply in {timeout:g} s")
                break
    return replies


@given(datagrams=st.lists(DATAGRAM.map(b"".join), min_size=1, max_size=5))
def test_conversations_match_the_reference(exercise, reference, conversation, datagrams):
    def converse(address):
        return ask_each(address, datagrams, conversation.timeout)

    ours = conversation.observe(reference.make_server(), converse)
    theirs = conversation.observe(exercise.make_server(), converse)
    conversation.differ(f"the datagrams {datagrams!r}", ours, theirs)
