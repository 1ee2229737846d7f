"""The pipe through which forked children send their trace events to the parent.

Theory of operation
-------------------
A forking server finishes each request in a child process: whatever the
child's Tracer records stays in the child's memory, which dies with it. So
the tracer makes one pipe when it attaches (before any fork), and every
child inherits both ends:

* a child writes each event as one JSON line (:func:`encode`), shorter than
  ``PIPE_BUF``, with one ``write()``: POSIX guarantees that the kernel never
  interleaves such a write with another child's, so lines are never torn;
* the parent reads without blocking (:meth:`ChildPipe.read`) whenever events
  are asked for and whenever the server reaps its children, so that the pipe
  does not fill while nobody looks;
* a child that finds the pipe full waits at most :data:`CHILD_WRITE_TIMEOUT`
  seconds for room, then drops the event: a tracer nobody reads never holds
  a child (and the server's close, which waits for children) for long.

The child never takes a lock here: another thread of the parent may have
held it at the moment of fork(), and the child would wait forever.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import time
from typing import Any

from .trace_events import Event

__all__ = ["CHILD_WRITE_TIMEOUT", "PIPE_BUF", "ChildPipe", "decode", "encode"]

#: Seconds a forked child waits for room in a full pipe before it drops an
#: event: long enough for the loop's next wake-up to empty it, short enough
#: that a tracer nobody reads never holds a child (and server_close) for long.
CHILD_WRITE_TIMEOUT = 2.0
#: Bytes asked of the kernel for the pipe (Linux; the default is 64 KiB,
#: about 250 events): 1 MiB is the most an unprivileged process may ask for
#: by default, and holds a few thousand requests' events.
_PIPE_SIZE = 1 << 20
#: Bytes read per read() call when draining the pipe.
_READ_CHUNK = 65536
#: Longest event line a child may write in one atomic write().
PIPE_BUF: int = getattr(select, "PIPE_BUF", 512)
#: Characters an over-long address or thread name is cut to in a line.
_CUT = 64


class ChildPipe:
    """One non-blocking pipe, made before the server forks.

    Resource handling: the constructor opens two descriptors, close()
    closes them (a second close() does nothing). Not thread-safe on the
    reading side: the Tracer reads under its own lock.
    """

    def __init__(self) -> None:
        self._read_fd, self._write_fd = os.pipe()
        self._partial = b""  # the start of a line whose end has not arrived yet
        self._closed = False
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        try:
            import fcntl
            if hasattr(fcntl, "F_SETPIPE_SZ"):
                fcntl.fcntl(self._write_fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
        except (ImportError, OSError):
            pass  # keep the default size: events still flow, just fewer fit

    def send(self, event: Event) -> None:
        """In a child: write one event in one atomic write; never raise.

        Drops the event if the pipe stays full for CHILD_WRITE_TIMEOUT
        seconds, or if the parent has closed the pipe.
        """
        line = encode(event)
        deadline = time.monotonic() + CHILD_WRITE_TIMEOUT
        while not self._closed:
            try:
                os.write(self._write_fd, line)
                return
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return  # the parent is not reading: drop this event
                select.select([], [self._write_fd], [], remaining)
            except OSError:
                return  # the parent detached and closed the pipe

    def read(self) -> list[Event]:
        """In the parent: every complete event line written so far; never blocks."""
        if self._closed:
            return []
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
        return [decode(line) for line in lines if line]

    def close(self) -> None:
        """Close both ends; events not read yet are lost."""
        if not self._closed:
            self._closed = True
            os.close(self._read_fd)
            os.close(self._write_fd)


# -- the line format ---------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _tupled(value: Any) -> Any:
    return tuple(_tupled(v) for v in value) if isinstance(value, list) else value


def encode(event: Event) -> bytes:
    """One JSON line, shorter than PIPE_BUF so that its write() is atomic.

    An absurdly long address or thread name is cut to a few dozen characters.
    """
    fields = dataclasses.asdict(event)
    fields["client_address"] = _jsonable(event.client_address)
    line = json.dumps(fields).encode() + b"\n"
    if len(line) >= PIPE_BUF:
        fields["client_address"] = repr(event.client_address)[:_CUT]
        fields["thread"] = event.thread[:_CUT]
        line = json.dumps(fields).encode() + b"\n"
    return line


def decode(line: bytes) -> Event:
    """The Event a line made by :func:`encode` describes (addresses as tuples)."""
    fields = json.loads(line)
    fields["client_address"] = _tupled(fields["client_address"])
    return Event(**fields)
