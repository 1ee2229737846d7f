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

Each call becomes one :class:`~netserv.lab.trace_events.Event`: the hook,
monotonic start and end times, the CPU time its thread spent in it, process
id, thread, the request number, the client address, the nesting depth (how
many traced calls were already running in that thread) and the exception it
raised, if any. An event is recorded when its call returns or raises.

Request numbers: each time ``get_request()`` returns, the request object it
returned gets the next number (1, 2, ...). A later hook belongs to that
request if one of its arguments is that object, or an object holding it in
an attribute (a handler holds it as ``self.request``); otherwise it
inherits the request of the traced call it runs inside, if any. Hooks that
belong to no request (serve_forever, service_actions, shutdown) are the
loop's.

Forked children: events of a forked child happen in another process, so
they come back through a pipe made at attach time (netserv.lab.trace_pipe).
The parent reads it whenever events are read, and whenever the server reaps
its children, so that it does not fill.

Where the rest lives: reading events as text (lanes, the summary) in
netserv.lab.trace_events; the pipe in netserv.lab.trace_pipe; the figure in
netserv.lab.timeline; the command line, and ``trace_once`` (one traced
request on a demo server), in netserv.lab.trace_cli, which imports this
module and never the other way round.

Public API::

    tracer = Tracer(); tracer.attach(server) ... tracer.detach()
    with traced(server) as tracer: ...       # attach, then detach at the end
    tracer.events       -> list[Event], sorted by start time
    tracer.requests()   -> {request number: [Event, ...]}
    tracer.summary()    -> str: deterministic, for printing and nbval
    tracer.timeline(ax=None) -> matplotlib Figure (netserv.lab.timeline)
    trace_cli.trace_once(model) -> Tracer    # one request on a demo server
    python -m netserv trace MODEL [--transport T] [--impl netserv|stdlib]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from .trace_events import HANDLER_PREFIX, Event, lane_namer
from .trace_events import summary as _summary
from .trace_pipe import ChildPipe

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "HANDLER_HOOKS",
    "HANDLER_PREFIX",
    "SERVER_HOOKS",
    "Event",
    "Tracer",
    "traced",
]

#: Server methods traced on every server that has them, in pipeline order.
SERVER_HOOKS = ("serve_forever", "handle_request", "shutdown", "server_close",
                "service_actions", "handle_timeout", "collect_children",
                "get_request", "verify_request", "process_request", "process_request_thread",
                "finish_request", "handle_error", "shutdown_request", "close_request")
#: Handler methods traced on every handler class that has them.
HANDLER_HOOKS = ("setup", "handle", "finish")

#: Hooks after which the parent empties the children's pipe, so that it never
#: fills while nobody reads events. A forking server reaps its children at
#: every wake-up of its loop; servers without children never pay for a read()
#: (which would also let another thread run just before the loop's select()).
_DRAIN_AFTER = ("collect_children",)


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
        self._child_numbers: set[int] = set()  # in a pre-forked worker: numbers it gave
        self._worker_requests: dict[tuple[int, int], int] = {}  # (pid, its number) -> ours
        self._server: Any = None
        self._saved: dict[str, Any] = {}  # instance attributes replaced by attach()
        self._attached = False
        self._pipe: ChildPipe | None = None  # made at attach() where fork() exists

    # -- attaching ---------------------------------------------------------

    def attach(self, server: Any) -> Tracer:
        """Wrap the server's hooks and its handler class; return self.

        Raises RuntimeError if this tracer was attached before.
        """
        if self._server is not None:
            raise RuntimeError("this Tracer was already attached; make a new one")
        self._server = server
        if hasattr(os, "fork"):
            self._pipe = ChildPipe()
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
        if self._pipe is not None:
            self._pipe.close()

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
        start, cpu = time.monotonic(), time.thread_time()
        try:
            result = call(*args, **kwargs)
        except BaseException as exc:
            self._finish(hook, args, (start, cpu), depth, request, type(exc).__name__)
            raise
        finally:
            local.depth, local.request = depth, outer
        if hook == "get_request":
            request = self._number(result)
        self._finish(hook, args, (start, cpu), depth, request, None)
        return result

    def _finish(self, hook: str, args: tuple[Any, ...], started: tuple[float, float],
                depth: int, request: int | None, error: str | None) -> None:
        """Record a call that has just returned (or raised ``error``).

        ``started``: time.monotonic() and time.thread_time() at its start.
        """
        end, cpu_end = time.monotonic(), time.thread_time()
        start, cpu_start = started
        thread = threading.current_thread()
        address = self._addresses.get(request) if request is not None else None
        self._store(Event(hook, start, end, os.getpid(), thread.name, threading.get_ident(),
                          thread is threading.main_thread(), request, address, depth, error,
                          cpu_end - cpu_start))
        if hook == "close_request" and request is not None:
            self._forget(args)

    def _number(self, result: Any) -> int | None:
        """Give the request get_request() returned the next number."""
        if not (isinstance(result, tuple) and len(result) == 2):
            return None
        request, client_address = result
        in_worker = os.getpid() != self._pid  # a pre-forked worker accepts for itself,
        with contextlib.nullcontext() if in_worker else self._lock:  # and never locks
            number = self._next_request
            self._next_request += 1
            self._requests[id(request)] = (request, number)
            self._addresses[number] = client_address
        if in_worker:
            self._child_numbers.add(number)  # another worker gives the same: see _renumbered
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
        """Hand a child's event to the pipe; never takes the lock (see trace_pipe)."""
        if self._pipe is not None:
            if event.request in self._child_numbers:
                event = dataclasses.replace(event, request=-event.request)
            self._pipe.send(event)

    def _drain(self) -> None:
        """Read every complete event line the children have written so far."""
        with self._lock:
            if self._pipe is not None:
                self._events.extend(map(self._renumbered, self._pipe.read()))

    def _renumbered(self, event: Event) -> Event:
        """A number a worker gave (sent negated) made one of ours, per (pid, number)."""
        if event.request is None or event.request >= 0:
            return event
        key = (event.pid, -event.request)
        if key not in self._worker_requests:
            self._worker_requests[key] = self._next_request
            self._next_request += 1
        return dataclasses.replace(event, request=self._worker_requests[key])

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

    @property
    def server_pid(self) -> int:
        """The process the traced server runs in: other pids are forked children."""
        return self._pid

    def lane(self, event: Event) -> str:
        """Where an event ran: loop, thread, main or child (see trace_events)."""
        return lane_namer(self.events, self._pid)(event)

    def summary(self) -> str:
        """Hook names in the order they started, grouped by request and by lane.

        Deterministic for a given program: no times, ports, pids or thread
        names (layout: netserv.lab.trace_events).
        """
        return _summary(self.events, self._pid)

    def timeline(self, ax: Axes | None = None, title: str | None = None,
                 spans: Mapping[str, tuple[float, float]] | None = None) -> Figure:
        """Draw the events with netserv.lab.timeline.timeline(); needs matplotlib."""
        from .timeline import timeline

        return timeline(self, ax=ax, title=title, spans=spans)


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
