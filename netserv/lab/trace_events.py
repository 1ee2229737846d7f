"""What a trace is made of, and how it reads as text.

Theory of operation
-------------------
A :class:`Event` is one traced call (see netserv.lab.trace, which records
them). This module holds everything that only *reads* events:

* the **lanes**: :func:`lane_namer` names where an event ran. ``loop``: a
  thread that served (ran get_request or a loop); ``thread``: another thread
  of the server's process, such as a request's thread; ``main``: the main
  thread, which calls shutdown(); ``child``: a forked process.
* the **summary**: :func:`summary` lists hook names in the order they
  started, one per line, with their lane and indented by nesting. Requests
  are grouped (``request 1``, ...) and, within a request, each lane's hooks
  come together, so that threads racing each other never change the text.
  Consecutive identical calls (a loop's many wake-ups, each with its
  service_actions) are shown once. No times, ports, pids or thread names
  appear in it: nbval can compare it.

Nothing here touches a server, a thread or a pipe (netserv.lab.trace_pipe
carries events out of forked children).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = [
    "HANDLER_PREFIX",
    "SERVING_HOOKS",
    "CallNode",
    "Event",
    "call_tree",
    "lane_namer",
    "summary",
]

#: Prefix of handler hooks in event names, so "handler.finish" is never
#: mistaken for the server's finish_request.
HANDLER_PREFIX = "handler."
#: Hooks whose thread is the one serving requests (the summary's "loop").
SERVING_HOOKS = ("serve_forever", "handle_request", "get_request")
_LANE_WIDTH = 8  # "thread" plus two spaces: the summary's lane column


@dataclasses.dataclass(frozen=True)
class Event:
    """One traced call."""

    hook: str  # "get_request", ..., or "handler.setup" for a handler's hook
    start: float  # time.monotonic() when the call began
    end: float  # time.monotonic() when it returned or raised
    pid: int
    thread: str  # the thread's name
    thread_id: int  # threading.get_ident(); with pid and name, identifies a lane
    main_thread: bool  # ran in the process's main thread
    request: int | None  # request number, or None for the loop's own hooks
    client_address: Any  # the request's client address, or None
    depth: int  # traced calls already running in this thread when it began
    error: str | None = None  # name of the exception class it raised, if any
    cpu: float = 0.0  # CPU seconds its thread spent in it (time.thread_time())

    @property
    def duration(self) -> float:
        """Seconds the call took, by the wall clock."""
        return self.end - self.start

    @property
    def lane_key(self) -> tuple[int, int, str]:
        """Identifies the thread or process that ran the call."""
        return (self.pid, self.thread_id, self.thread)


# -- lanes and the summary -------------------------------------------------------


def lane_namer(events: list[Event], server_pid: int) -> Callable[[Event], str]:
    """A function naming each event's lane: loop, thread, main or child.

    ``server_pid`` is the process the server runs in; every other pid is a
    forked child. The threads that served (ran one of SERVING_HOOKS) are
    "loop".
    """
    serving = {e.lane_key for e in events if e.pid == server_pid and e.hook in SERVING_HOOKS}

    def lane(event: Event) -> str:
        if event.pid != server_pid:
            return "child"
        if event.lane_key in serving:
            return "loop"
        return "main" if event.main_thread else "thread"

    return lane


def summary(events: list[Event], server_pid: int) -> str:
    """Hook names in the order they started, grouped by request and by lane.

    ``events`` sorted by start time. Deterministic for a given program (see
    the module docstring for the layout).
    """
    lane = lane_namer(events, server_pid)
    # Sections: one per request, one per lane for the loop's own hooks;
    # each section is a list of lanes, each lane a list of events.
    sections: dict[tuple[str, object], dict[tuple[int, int, str], list[Event]]] = {}
    for event in events:
        key: tuple[str, object] = (
            ("request", event.request) if event.request is not None else ("loop", event.lane_key))
        sections.setdefault(key, {}).setdefault(event.lane_key, []).append(event)
    lines: list[str] = []
    for (kind, number), lanes in sections.items():
        indent = ""
        if kind == "request":
            lines.append(f"request {number}")
            indent = "  "
        for lane_events in lanes.values():
            label = lane(lane_events[0]).ljust(_LANE_WIDTH)
            lines += [indent + label + text for text in _render(lane_events)]
    return "\n".join(lines)


@dataclasses.dataclass
class CallNode:
    event: Event
    children: list[CallNode] = dataclasses.field(default_factory=list)


def call_tree(events: list[Event]) -> list[CallNode]:
    """One lane's calls (by start time) as a tree built from their depths.

    A call's children start after it at one level deeper, until the next
    call at its level or above.
    """
    top = min(e.depth for e in events)
    root: list[CallNode] = []
    stack: list[tuple[int, list[CallNode]]] = [(top - 1, root)]
    for event in events:
        while len(stack) > 1 and stack[-1][0] >= event.depth:
            stack.pop()
        node = CallNode(event)
        stack[-1][1].append(node)
        stack.append((event.depth, node.children))
    return root


def _render(events: list[Event]) -> list[str]:
    """One lane's calls as indented lines; consecutive identical subtrees once."""

    def render(nodes: list[CallNode], level: int) -> list[str]:
        lines: list[str] = []
        previous: list[str] | None = None
        for node in nodes:
            error = node.event.error
            suffix = f"  (raised {error})" if error else ""
            block = ["  " * level + node.event.hook + suffix, *render(node.children, level + 1)]
            if block != previous:
                lines += block
            previous = block
        return lines

    return render(call_tree(events), 0)
