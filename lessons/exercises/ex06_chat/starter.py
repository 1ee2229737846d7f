# starter.py: generated from solution.py by tools/make_starters.py (`make starters`).
# This is the file you edit: replace each TODO with working code, then run the
# checks with `make check EX=NN` (NN: this exercise's number; see README.md).
"""Exercise 06: a chat server (ThreadingMixIn): every line goes to everyone else.

The protocol, over TCP, lines ending in ``\\n``:

1. A client's first line is its name: 1 to 16 letters, digits or ``_``.
   A bad name gets ``* bad name\\n``, a name already in use gets
   ``* name taken\\n``, and the server closes that connection.
2. A good name makes the client a *member*: every other member receives
   ``* <name> joined\\n``, and *then* the new member gets ``* welcome <name>\\n``
   (in this order: a client that has its welcome may count on the others
   having been told, and will never hear of an earlier member's join).
3. Each further line ``<text>`` from a member goes to every *other* member as
   ``<name>: <text>\\n`` (never back to the sender).
4. When a member disconnects, the others receive ``* <name> left\\n``.

A member that vanished (its connection reset, its socket gone) must not
break the others: a failed send to one member is that member's problem only.

``ChatServer`` keeps the members in ``self.members`` (name -> the member's
wfile); handler threads add, remove and read members concurrently, so the
table needs a lock. Do not hold the lock while sending (a slow member would
stall everyone): copy the list of recipients under the lock, send outside it.

Read first: lessons/04_concurrency.md, notebooks/08_threading.ipynb,
netserv/threads.py; exercise 05 (the lock).
"""

from __future__ import annotations

import re
import threading
from typing import Any

import netserv

#: A legal name: short enough to prefix every message, plain enough to print.
NAME = re.compile(rb"[A-Za-z0-9_]{1,16}")


class ChatServer(netserv.ThreadingTCPServer):
    """A threading TCP server with a table of members, shared by the handler threads."""

    def __init__(self, server_address: Any, RequestHandlerClass: Any) -> None:
        self.members: dict[bytes, Any] = {}
        self.members_lock = threading.Lock()
        super().__init__(server_address, RequestHandlerClass)

    def join(self, name: bytes, wfile: Any) -> bool:
        """Add a member; False if the name is taken."""
        # TODO: add name -> wfile to self.members under the lock; False if taken
        raise NotImplementedError("TODO: add name -> wfile to self.members under the lock; False if taken")

    def leave(self, name: bytes) -> None:
        """Remove a member (nothing happens if it is not one)."""
        # TODO: remove name from self.members under the lock
        raise NotImplementedError("TODO: remove name from self.members under the lock")

    def broadcast(self, line: bytes, sender: bytes) -> None:
        """Send line to every member except sender; a member that fails is skipped."""
        # TODO: copy the recipients under the lock, then send to each; an OSError skips that one
        raise NotImplementedError("TODO: copy the recipients under the lock, then send to each; an OSError skips that one")


class ChatHandler(netserv.StreamRequestHandler):
    """One member's connection: its name, then its lines, until it disconnects."""

    def handle(self) -> None:
        # TODO: read and check the name, join, announce, welcome; relay each line; announce the leave
        raise NotImplementedError("TODO: read and check the name, join, announce, welcome; relay each line; announce the leave")


def make_server(address: Any = ("127.0.0.1", 0)) -> ChatServer:
    return ChatServer(address, ChatHandler)
