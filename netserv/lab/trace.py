"""Lifecycle tracing: watch every hook of a server run, from outside.

Theory of operation
-------------------
A :class:`Tracer` attaches to one server *instance*. For every hook name it
finds on the server, it puts a wrapper in the instance's ``__dict__``; the
server's own code calls ``self.get_request()``, ``self.finish_request()``
and so on, and Python finds the instance attribute before the class's
method, so every call goes through the wrapper. The handler side is traced
by giving the server a subclass of its ``RequestHandlerClass`` whose hook
methods are wrapped. ``detach()`` deletes the wrappers and puts the original
handler class back: the classes themselves are never touched, and a server
that is not traced runs exactly the code it runs without this module.

Because only method *names* are used, the standard module's servers are
traced the same way as netserv's. The names are :data:`SERVER_HOOKS` and
:data:`HANDLER_HOOKS`, plus whatever a server or handler class lists in a
``traced_hooks`` class attribute (netserv.pool and netserv.eventdriven do).
A name the object lacks is skipped.

Each call becomes one :class:`Event`: the hook, monotonic start and end
times, process id, thread, the request number, the client address, the
nesting depth (how many traced calls were already running in that thread)
and the exception it raised, if any. An event is recorded when its call
returns or raises.

Request numbers: each time ``get_request()`` returns, the request object it
returned gets the next number (1, 2, ...). A later hook belongs to that
request if one of its arguments is that object, or an object holding it in
an attribute (a handler holds it as ``self.request``); otherwise it
inherits the request of the traced call it runs inside, if any. Hooks that
belong to no request (serve_forever, service_actions, shutdown) are the
loop's.

Forked children: events of a forked child happen in another process, so
they are sent back through a pipe made at attach time. The child writes one
JSON line per event with one ``write()`` shorter than ``PIPE_BUF``, which
the kernel never interleaves with another child's; the parent reads the pipe
without blocking whenever events are read, and whenever the server reaps
its children (so that the pipe does not fill). A child that finds the pipe
full waits at most :data:`CHILD_WRITE_TIMEOUT` seconds, then drops the event.

Public API::

    tracer = Tracer(); tracer.attach(server) ... tracer.detach()
    with traced(server) as tracer: ...       # attach, then detach at the end
    tracer.events       -> list[Event], sorted by start time
    tracer.requests()   -> {request number: [Event, ...]}
    tracer.summary()    -> str: deterministic, for printing and nbval
    tracer.timeline(ax=None) -> matplotlib Figure, one lane per thread/process
    python -m netserv trace MODEL [--transport T] [--impl netserv|stdlib]

The summary lists hook names in the order they started, one per line, with
the *lane* that ran them (``loop``: the thread serving; ``thread``: another
thread of the server process, such as a request's thread; ``main``: the main
thread, which calls shutdown(); ``child``: a forked process) and indented by
nesting. Requests are grouped (``request 1``, ...) and, within a request,
each lane's hooks come together, so that threads racing each other never
change the text. Consecutive identical calls (a loop's many wake-ups, each
with its service_actions) are shown once. No times, ports, pids or thread
names appear in it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import inspect
import json
import os
import select
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["SERVER_HOOKS", "HANDLER_HOOKS", "Event", "Tracer", "traced", "trace_once", "main"]

#: Server methods traced on every server that has them, in pipeline order.
SERVER_HOOKS = ("serve_forever", "handle_request", "shutdown", "server_close",
                "service_actions", "handle_timeout", "collect_children",
                "get_request", "verify_request", "process_request", "process_request_thread",
                "finish_request", "handle_error", "shutdown_request", "close_request")
#: Handler methods traced on every handler class that has them.
HANDLER_HOOKS = ("setup", "handle", "finish")
#: Prefix of handler hooks in event names, so "handler.finish" is never
#: mistaken for the server's finish_request.
HANDLER_PREFIX = "handler."

#: Hooks whose thread is the one serving requests (the summary's "loop").
_SERVING_HOOKS = ("serve_forever", "handle_request", "get_request")
#: Hooks after which the parent empties the children's pipe, so that it never
#: fills while nobody reads events. A forking server reaps its children at
#: every wake-up of its loop; servers without children never pay for a read()
#: (which would also let another thread run just before the loop's select()).
_DRAIN_AFTER = ("collect_children",)

#: Seconds a forked child waits for room in a full pipe before it drops an
#: event: long enough for the loop's next wake-up to empty it, short enough
#: that a tracer nobody reads never holds a child (and server_close) for long.
CHILD_WRITE_TIMEOUT = 2.0
#: Bytes asked of the kernel for the children's pipe (Linux; the default is
#: 64 KiB, about 250 events): 1 MiB is the most an unprivileged process may
#: ask for by default, and holds a few thousand requests' events.
_PIPE_SIZE = 1 << 20
#: Longest event line a child may write in one atomic write().
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)
#: Bytes read from the pipe per read() call when draining it.
_READ_CHUNK = 65536

#: Hooks in the order they take colours in a timeline: the pipeline first.
_COLOUR_ORDER = ("get_request", "verify_request", "process_request", "finish_request",
                 "handler.setup", "handler.handle", "handler.finish", "shutdown_request",
                 "close_request", "handle_error", "process_request_thread", "service_actions",
                 "collect_children", "shutdown", "server_close", "handle_request",
                 "handle_timeout", "serve_forever")
#: Legend entries in one column before the legend uses two.
_LEGEND_ROWS = 12
#: Timeline size in inches: wide enough for a legend beside the plot; each
#: lane gets the height of two lines of label text, plus room for the titles.
_FIGURE_WIDTH, _LANE_HEIGHT, _FIGURE_MARGIN = 10.0, 0.7, 1.2
#: A lane is one unit high: its outermost bars fill 80 % of it (a gap shows
#: between lanes) and each nested level is 75 % of the bar it runs in.
_BAR_HEIGHT, _NESTED_SHRINK = 0.8, 0.75
#: The narrowest bar, as a fraction of the time shown: a call of a few
#: microseconds in a timeline of milliseconds would otherwise be invisible.
_MIN_BAR_FRACTION = 0.003

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

    @property
    def duration(self) -> float:
        """Seconds the call took."""
        return self.end - self.start

    @property
    def lane_key(self) -> tuple[int, int, str]:
        return (self.pid, self.thread_id, self.thread)


_MISSING = object()


class Tracer:
    """Records the hooks of one server (see the module docstring).

    Resource handling: attach() opens a pipe (on systems with fork()) that
    detach() closes; use :func:`traced` or call detach() in a ``finally``.
    Events stay readable after detach(). A tracer attaches to one server
    once; make a new one to trace again.

    Error handling: a traced hook's exception is recorded (``Event.error``)
    and re-raised unchanged, so the server routes it as it would untraced.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()  # guards _events, _requests, the pipe buffer
        self._local = threading.local()  # depth and current request, per thread
        self._events: list[Event] = []
        self._requests: dict[int, tuple[Any, int]] = {}  # id(obj) -> (obj, number)
        self._addresses: dict[int, Any] = {}  # request number -> client address
        self._next_request = 1
        self._server: Any = None
        self._saved: dict[str, Any] = {}  # instance attributes replaced by attach()
        self._attached = False
        self._read_fd: int | None = None
        self._write_fd: int | None = None
        self._partial = b""
        self._child_numbers: set[int] = set()  # in a worker: numbers it gave
        self._worker_requests: dict[tuple[int, int], int] = {}  # (pid, number) -> number

    # -- attaching ---------------------------------------------------------

    def attach(self, server: Any) -> Tracer:
        """Wrap the server's hooks and its handler class; return self.

        Raises RuntimeError if this tracer was attached before.
        """
        if self._server is not None:
            raise RuntimeError("this Tracer was already attached; make a new one")
        self._server = server
        if hasattr(os, "fork"):
            self._open_pipe()
        instance = vars(server)
        for name in _hook_names(type(server), SERVER_HOOKS):
            method = getattr(server, name, None)
            if not callable(method):
                continue
            self._saved[name] = instance.get(name, _MISSING)
            instance[name] = self._wrap(name, method)
        self._saved["RequestHandlerClass"] = instance.get("RequestHandlerClass", _MISSING)
        server.RequestHandlerClass = self._traced_handler_class(server.RequestHandlerClass)
        self._attached = True
        return self

    def detach(self) -> None:
        """Restore the server's instance attributes exactly; close the pipe.

        Events that children wrote before are read first. Calling it again
        does nothing.
        """
        if not self._attached:
            return
        self._attached = False
        instance = vars(self._server)
        for name, previous in self._saved.items():
            if previous is _MISSING:
                instance.pop(name, None)
            else:
                instance[name] = previous
        self._saved.clear()
        self._drain()
        for fd in (self._read_fd, self._write_fd):
            if fd is not None:
                os.close(fd)
        self._read_fd = self._write_fd = None

    def _open_pipe(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        try:
            import fcntl
            if hasattr(fcntl, "F_SETPIPE_SZ"):
                fcntl.fcntl(self._write_fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except (ImportError, OSError):
            pass  # keep the default size: events still flow, just fewer fit

    def _traced_handler_class(self, cls: type) -> type:
        """A subclass of ``cls`` (same name) whose hook methods are traced.

        Empty ``__slots__``: instances get a ``__dict__`` only if those of
        ``cls`` have one, so a handler with slots keeps its memory and its
        AttributeErrors while traced.
        """
        namespace: dict[str, Any] = {"__module__": cls.__module__,
                                     "__qualname__": cls.__qualname__,
                                     "__doc__": cls.__doc__, "__slots__": ()}
        for name in _hook_names(cls, HANDLER_HOOKS):
            original = inspect.getattr_static(cls, name, None)
            if inspect.isfunction(original):
                namespace[name] = self._wrap(HANDLER_PREFIX + name, original)
        return type(cls.__name__, (cls,), namespace)

    def _wrap(self, hook: str, call: Callable[..., Any]) -> Callable[..., Any]:
        tracer = self

        @functools.wraps(call)
        def traced_call(*args: Any, **kwargs: Any) -> Any:
            if not tracer._attached:  # a wrapper someone kept after detach()
                return call(*args, **kwargs)
            return tracer._record(hook, call, args, kwargs)

        return traced_call

    # -- recording ---------------------------------------------------------

    def _record(self, hook: str, call: Callable[..., Any], args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        local = self._local
        depth = getattr(local, "depth", 0)
        outer = getattr(local, "request", None)
        request = self._request_of(args)
        if request is None:
            request = outer
        local.depth, local.request = depth + 1, request
        start = time.monotonic()
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:
            self._finish(hook, args, start, depth, request, type(exc).__name__)
            raise
        finally:
            local.depth, local.request = depth, outer
        if hook == "get_request":
            request = self._number(result)
        self._finish(hook, args, start, depth, request, None)
        return result

    def _finish(self, hook: str, args: tuple[Any, ...], start: float, depth: int,
                request: int | None, error: str | None) -> None:
        """Record a call that has just returned (or raised ``error``)."""
        end = time.monotonic()
        thread = threading.current_thread()
        address = self._addresses.get(request) if request is not None else None
        self._store(Event(hook, start, end, os.getpid(), thread.name, threading.get_ident(),
                          thread is threading.main_thread(), request, address, depth, error))
        if hook == "close_request" and request is not None:
            self._forget(args)

    def _number(self, result: Any) -> int | None:
        """Give the request get_request() returned the next number."""
        if not (isinstance(result, tuple) and len(result) == 2):
            return None
        request, client_address = result
        if os.getpid() != self._pid:
            return self._number_in_child(request, client_address)
        with self._lock:
            number = self._next_request
            self._next_request += 1
            self._requests[id(request)] = (request, number)
            self._addresses[number] = client_address
        return number

    def _number_in_child(self, request: Any, client_address: Any) -> int:
        """A pre-forked worker numbers the requests it accepts itself.

        Its numbers are its own (another worker uses the same ones): they
        travel as (pid, number), and the parent gives each pair a number of
        its own when it reads the event. No lock: see _send_from_child.
        """
        number = self._next_request
        self._next_request += 1
        self._requests[id(request)] = (request, number)
        self._addresses[number] = client_address
        self._child_numbers.add(number)
        return number

    def _request_of(self, args: tuple[Any, ...]) -> int | None:
        """The number of the request an argument is, or holds in an attribute."""
        for arg in args:
            entry = self._requests.get(id(arg))
            if entry is not None and entry[0] is arg:
                return entry[1]
        for arg in args:
            for value in _attribute_values(arg):
                entry = self._requests.get(id(value))
                if entry is not None and entry[0] is value:
                    return entry[1]
        return None

    def _forget(self, args: tuple[Any, ...]) -> None:
        """Drop a closed request: its id may be reused by a later object.

        Not in a forked child: its registry dies with it, and the lock may
        have been held by another thread of the parent at the fork.
        """
        if args and os.getpid() == self._pid:
            with self._lock:
                entry = self._requests.get(id(args[0]))
                if entry is not None and entry[0] is args[0]:
                    del self._requests[id(args[0])]

    def _store(self, event: Event) -> None:
        if event.pid != self._pid:
            self._send_from_child(event)
            return
        with self._lock:
            self._events.append(event)
        if event.hook in _DRAIN_AFTER:
            self._drain()

    def _send_from_child(self, event: Event) -> None:
        """Write one event to the parent in one atomic write; never raise.

        The child never takes the tracer's lock: another thread of the
        parent may have held it at the moment of fork().
        """
        fd = self._write_fd
        if fd is None:
            return
        line = _encode(event, event.request in self._child_numbers)
        deadline = time.monotonic() + CHILD_WRITE_TIMEOUT
        while True:
            try:
                os.write(fd, line)
                return
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return  # the parent is not reading: drop this event
                select.select([], [fd], [], remaining)
            except OSError:
                return  # the parent detached and closed the pipe

    def _drain(self) -> None:
        """Read every complete event line the children have written so far."""
        with self._lock:
            if self._read_fd is None:
                return
            chunks = [self._partial]
            while True:
                try:
                    chunk = os.read(self._read_fd, _READ_CHUNK)
                except BlockingIOError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            *lines, self._partial = b"".join(chunks).split(b"\n")
            self._events.extend(self._renumbered(_decode(line)) for line in lines if line)

    def _renumbered(self, event: Event) -> Event:
        """Give a request a worker numbered itself a number of the parent's (lock held)."""
        if not isinstance(event.request, list):
            return event
        key = (event.request[0], event.request[1])
        number = self._worker_requests.get(key)
        if number is None:
            number = self._worker_requests[key] = self._next_request
            self._next_request += 1
        return dataclasses.replace(event, request=number)

    # -- reading -----------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """Every event so far (children's included), sorted by start time."""
        self._drain()
        with self._lock:
            events = list(self._events)
        return sorted(events, key=lambda e: (e.start, e.depth))

    def requests(self) -> dict[int, list[Event]]:
        """The events of each request, by request number, each list by start time."""
        grouped: dict[int, list[Event]] = {}
        for event in self.events:
            if event.request is not None:
                grouped.setdefault(event.request, []).append(event)
        return dict(sorted(grouped.items()))

    def lane(self, event: Event) -> str:
        """The summary's name for where an event ran: loop, thread, main or child."""
        return self._lane_namer(self.events)(event)

    def _lane_namer(self, events: list[Event]) -> Callable[[Event], str]:
        """Name lanes: the threads that served (ran get_request or a loop) are "loop"."""
        serving = {e.lane_key for e in events if e.pid == self._pid and e.hook in _SERVING_HOOKS}

        def lane(event: Event) -> str:
            if event.pid != self._pid:
                return "child"
            if event.lane_key in serving:
                return "loop"
            return "main" if event.main_thread else "thread"

        return lane

    def summary(self) -> str:
        """Hook names in the order they started, grouped by request and by lane.

        Deterministic for a given program: no times, ports, pids or thread
        names, and repeated identical calls shown once (see the module
        docstring for the layout).
        """
        events = self.events
        lane = self._lane_namer(events)

        # Sections: one per request, one per lane for the loop's own hooks;
        # each section is a list of lanes, each lane a list of events.
        sections: dict[Any, dict[Any, list[Event]]] = {}
        for event in events:
            if event.request is not None:
                key: tuple[str, Any] = ("request", event.request)
            else:
                key = ("loop", event.lane_key)
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

    def timeline(self, ax: Any = None, title: str | None = None) -> Any:
        """Draw the events: one lane per thread or process, one bar per call.

        Nested calls are drawn as thinner bars on top of the call they run
        in; colours name the hooks (legend). Times are milliseconds from the
        first event. Returns the matplotlib Figure (a new one unless ``ax``
        is given).
        """
        import matplotlib.pyplot as plt  # only the drawing needs matplotlib

        events = self.events
        if ax is None:
            lane_count = max(1, len({e.lane_key for e in events}))
            fig, ax = plt.subplots(figsize=(_FIGURE_WIDTH,
                                            _FIGURE_MARGIN + _LANE_HEIGHT * lane_count))
        else:
            fig = ax.figure
        lane = self._lane_namer(events)
        lanes: dict[tuple[int, int, str], list[Event]] = {}
        for event in events:
            lanes.setdefault(event.lane_key, []).append(event)
        t0 = events[0].start if events else 0.0
        span = max((e.end for e in events), default=t0) - t0
        min_width = max(span * 1000 * _MIN_BAR_FRACTION, 1e-3)
        colours = _hook_colours([e.hook for e in events])
        labels = []
        for row, lane_events in enumerate(lanes.values()):
            y = -row
            top = min(e.depth for e in lane_events)
            for event in lane_events:
                level = event.depth - top
                height = _BAR_HEIGHT * _NESTED_SHRINK ** level
                ax.broken_barh([((event.start - t0) * 1000,
                                 max(event.duration * 1000, min_width))],
                               (y - height / 2, height), facecolors=colours[event.hook],
                               edgecolors="black", linewidth=0.3, zorder=2 + level,
                               label=event.hook)
            first = lane_events[0]
            name = lane(first)
            labels.append(f"child\npid {first.pid}" if name == "child"
                          else f"{name}\n{first.thread}")
        ax.set_yticks([-row for row in range(len(labels))], labels)
        ax.set_xlabel("milliseconds since the first traced call")
        ax.set_title(title or "hooks over time")
        handles = {}
        for artist in ax.collections:
            handles.setdefault(artist.get_label(), artist)
        ax.legend(handles.values(), handles.keys(), loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize="x-small", frameon=False,
                  ncol=1 if len(handles) <= _LEGEND_ROWS else 2)
        fig.tight_layout()
        return fig


@contextlib.contextmanager
def traced(server: Any) -> Iterator[Tracer]:
    """Attach a new Tracer to ``server`` for the block; detach at its end."""
    tracer = Tracer().attach(server)
    try:
        yield tracer
    finally:
        tracer.detach()


# -- helpers -----------------------------------------------------------------

def _hook_names(cls: type, standard: tuple[str, ...]) -> list[str]:
    """The standard hook names plus the class's ``traced_hooks``, without repeats."""
    extra = getattr(cls, "traced_hooks", ())
    return list(dict.fromkeys((*standard, *extra)))


def _attribute_values(obj: Any) -> list[Any]:
    """An object's attribute values (its __dict__ and __slots__), one level deep."""
    values = list(getattr(obj, "__dict__", {}).values())
    for klass in type(obj).__mro__:
        slots = vars(klass).get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            value = getattr(obj, slot, _MISSING)
            if value is not _MISSING:
                values.append(value)
    return values


def _hook_colours(hooks: list[str]) -> dict[str, Any]:
    """A colour per hook, the same in every figure: a fixed palette position
    for each standard hook, the next free ones for a class's own hooks."""
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20")
    # tab20 holds ten hues, each dark then light: the ten pipeline hooks take
    # the dark ones, so neighbours in the pipeline never look alike.
    colours = [palette(i) for i in (*range(0, 20, 2), *range(1, 20, 2))]
    colours += [plt.get_cmap("tab20b")(i) for i in range(20)]
    known = list(_COLOUR_ORDER)
    for hook in hooks:
        if hook not in known:
            known.append(hook)
    return {hook: colours[known.index(hook) % len(colours)] for hook in hooks}


def _render(events: list[Event]) -> list[str]:
    """One lane's calls as indented lines; consecutive identical subtrees once."""
    top = min(e.depth for e in events)
    # Build the call tree from depths: a call's children start after it at
    # one level deeper, until the next call at its level or above.
    root: list[tuple[Event, list]] = []
    stack: list[tuple[int, list]] = [(top - 1, root)]
    for event in events:
        while len(stack) > 1 and stack[-1][0] >= event.depth:
            stack.pop()
        children: list = []
        stack[-1][1].append((event, children))
        stack.append((event.depth, children))

    def render(nodes: list[tuple[Event, list]], level: int) -> list[str]:
        lines: list[str] = []
        previous: list[str] | None = None
        for event, children in nodes:
            suffix = f"  (raised {event.error})" if event.error else ""
            block = ["  " * level + event.hook + suffix] + render(children, level + 1)
            if block != previous:
                lines += block
            previous = block
        return lines

    return render(root, 0)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def _encode(event: Event, own_number: bool = False) -> bytes:
    """One JSON line, shorter than PIPE_BUF so that its write() is atomic.

    ``own_number``: the request number is one the child gave (pre-fork), so
    it is sent as [pid, number].
    """
    fields = dataclasses.asdict(event)
    if own_number:
        fields["request"] = [event.pid, event.request]
    fields["client_address"] = _jsonable(event.client_address)
    line = json.dumps(fields).encode() + b"\n"
    if len(line) >= _PIPE_BUF:  # an absurdly long address or thread name
        fields["client_address"] = repr(event.client_address)[:64]
        fields["thread"] = event.thread[:64]
        line = json.dumps(fields).encode() + b"\n"
    return line


def _decode(line: bytes) -> Event:
    fields = json.loads(line)
    fields["client_address"] = _tupled(fields["client_address"])
    return Event(**fields)


# -- python -m netserv trace --------------------------------------------------

#: The one message the trace command sends: one line, echoed back.
MESSAGE = b"hello\n"


def trace_once(model: str = "sync", transport: str = "tcp", impl: str = "netserv") -> Tracer:
    """Serve one echo request on a traced demo server; return the (detached) tracer.

    The server runs in a thread (netserv.lab.demo.running) and is shut down and
    closed (children reaped) before this returns. Raises ValueError for an
    unknown or unavailable model/transport/impl, and RuntimeError if the
    echo came back wrong.
    """
    from . import demo

    server = demo.make_server(model, transport, impl)
    try:
        with traced(server) as tracer:
            with demo.running(server):
                reply = demo.echo_once(server, MESSAGE)
    except BaseException:
        demo.cleanup(server)  # running() cleans up, unless it never started
        raise
    if reply != MESSAGE:
        raise RuntimeError(f"the {model} echo server answered {reply!r} to {MESSAGE!r}")
    return tracer


def main(argv: list[str]) -> int:
    """``python -m netserv trace MODEL``: print the hooks one request runs."""
    from . import demo

    parser = argparse.ArgumentParser(
        prog="python -m netserv trace",
        description="Run one echo request through a demo server on loopback and print "
                    "the hooks it ran, in order, grouped by request and lane.")
    parser.add_argument("model", choices=list(demo.MODELS))
    parser.add_argument("--transport", choices=list(demo.TRANSPORTS), default="tcp")
    parser.add_argument("--impl", choices=demo.IMPLS, default="netserv")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        # The demo forks from a process that also runs the serve loop's
        # thread; Python warns that fork() with threads may deadlock a child
        # that takes a lock some other thread held. The child here only
        # finishes its request and exits.
        warnings.filterwarnings("ignore", message=r".*multi-threaded.*fork",
                                category=DeprecationWarning)
        try:
            tracer = trace_once(args.model, args.transport, args.impl)
        except ValueError as exc:
            print(f"netserv trace: {exc}", file=sys.stderr)
            return 2
    print(tracer.summary())
    return 0
