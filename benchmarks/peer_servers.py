"""The asyncio servers of the peer table, and the allocator switches that explain it.

Theory of operation
-------------------
benchmarks/peers.py measures servers in processes of their own; this module
holds what those processes run besides netserv's servers and the reference
loop (benchmarks/selectors_echo.py), so that notebook 16 can show the same
code it measures:

* :class:`EchoProtocol`: line echo as an ``asyncio.Protocol``, the callbacks
  of netserv's EventHandler; :func:`echo_stream`: the same with asyncio
  streams, a coroutine per connection. :func:`new_loop` gives asyncio's loop
  or uvloop's, :func:`start_asyncio_server` binds either server.
* glibc's allocator: CPython's ``recv(n)`` allocates n bytes first, and
  asyncio asks for 256 KiB. Whether that costs system calls depends on the
  allocator's mmap threshold, which glibc moves as a process runs.
  :func:`set_malloc_thresholds` fixes it (every server of the table calls it
  at start, so that runs agree), :func:`recv_64k` makes asyncio ask for what
  netserv asks, and :func:`recv_cost` measures one recv() in a new
  interpreter.

Every server binds 127.0.0.1; nothing here runs a loop by itself.
"""

from __future__ import annotations

import asyncio
import ctypes
import subprocess
import sys
from typing import cast

LOOPBACK = "127.0.0.1"
#: listen() backlog: the benchmark opens its connections in a burst.
BACKLOG = 256  # as benchmarks/concurrency.py
#: Bytes netserv.eventdriven asks of one recv() (and selectors_echo).
RECV_SIZE = 65536
#: Seconds recv_cost()'s interpreter may take.
RECV_COST_TIMEOUT = 60.0


#: glibc's mallopt() parameter for the mmap threshold: allocations at least
#: this large are served by mmap() and given back by munmap() when freed.
M_MMAP_THRESHOLD = -3
#: ... and for the trim threshold: free memory at the top of the heap beyond
#: it is given back to the kernel (brk()) at once.
M_TRIM_THRESHOLD = -1
#: The (mmap, trim) thresholds every glibc process starts with. glibc raises
#: them on its own (to the block's size, and twice that) each time a larger
#: mmap()ed block is freed, so their values depend on what the process did
#: before; setting them with mallopt() fixes them (and stops the raising), so
#: that every server runs in the same state.
START_THRESHOLDS = (128 * 1024, 128 * 1024)
#: The thresholds of the "-warm" experiment: those of a process that once
#: freed a 1 MiB block, above asyncio's 256 KiB reads.
WARM_THRESHOLDS = (1 << 20, 2 << 20)


def uvloop_available() -> bool:
    """True if the optional uvloop package imports (``pip install -e '.[uvloop]'``)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


class EchoProtocol(asyncio.Protocol):
    """Line echo as an asyncio Protocol: the same callbacks as netserv's EventHandler.

    The loop calls connection_made(transport), then data_received(data) for
    every chunk; the partial line (bytes after the last newline) waits in
    ``self.held``, a field of this object: one row of the loop's table.
    """

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A WriteTransport by contract (uvloop's is not a subclass of asyncio's).
        self.transport = cast(asyncio.WriteTransport, transport)
        self.held = b""

    def data_received(self, data: bytes) -> None:
        if self.held:
            data, self.held = self.held + data, b""
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self.held, data = data[end:], data[:end]
        if data:
            self.transport.write(data)  # never blocks: the transport buffers


async def echo_stream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Line echo with asyncio streams: one coroutine per connection.

    The partial line is no longer a field of anything we wrote: it waits in
    the reader's buffer while this coroutine is suspended in readline(),
    and where we are in the conversation is the coroutine's frame.
    """
    try:
        while line := await reader.readline():
            writer.write(line)
            await writer.drain()  # wait while the client reads slower than we write
    except ConnectionError:
        pass  # the client reset the connection: nothing to answer
    finally:
        writer.close()


def recv_64k() -> None:
    """Make asyncio's socket transports ask recv() for 64 KiB, as netserv does.

    asyncio's selector transport reads with ``sock.recv(max_size)``, a class
    attribute of 256 KiB. CPython's recv(n) first allocates n bytes, then
    shrinks them to what arrived. Above glibc's mmap threshold (128 KiB at
    the start of a process) that allocation is an mmap(), the shrink an
    mremap(), the free a munmap(): system calls and page faults for every
    request. This switch (a private attribute: an experiment only) avoids it.
    """
    from asyncio import selector_events
    selector_events._SelectorSocketTransport.max_size = RECV_SIZE  # type: ignore[attr-defined]


def set_malloc_thresholds(thresholds: tuple[int, int]) -> bool:
    """Fix glibc's (mmap, trim) thresholds; False where there is no mallopt().

    Every server process of the table calls it at start (START_THRESHOLDS,
    or WARM_THRESHOLDS for the "-warm" kind): a read buffer of 256 KiB
    (asyncio's) then costs the same in every run, whatever the interpreter
    allocated and freed while it started.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc: the allocator keeps its own rules
    mmap_threshold, trim_threshold = thresholds
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)
                and mallopt(M_TRIM_THRESHOLD, trim_threshold))


#: A stand-alone script (``python -c``): CPU microseconds of one send() and
#: one recv(SIZE) of a 64-byte line on a socket pair, with glibc's mallopt()
#: parameters M_MMAP and M_TRIM set to MMAP and TRIM bytes first (see
#: set_malloc_thresholds()). Arguments: SIZE M_MMAP MMAP M_TRIM TRIM COUNT.
RECV_COST_SCRIPT = """
import ctypes, socket, sys, time
size, m_mmap, mmap_threshold, m_trim, trim_threshold, count = map(int, sys.argv[1:])
try:
    ctypes.CDLL(None).mallopt(m_mmap, mmap_threshold)
    ctypes.CDLL(None).mallopt(m_trim, trim_threshold)
except (OSError, AttributeError):
    pass
first, second = socket.socketpair()
start = time.process_time()
for _ in range(count):
    first.send(b"x" * 63 + b"\\n")
    second.recv(size)
print((time.process_time() - start) / count * 1e6)
"""


def recv_cost(size: int, thresholds: tuple[int, int] = START_THRESHOLDS,
              count: int = 20_000) -> float:
    """CPU us of one send() + recv(size) of 64 bytes, in a new interpreter.

    The allocator's thresholds are fixed first, as in the servers.
    """
    mmap_threshold, trim_threshold = thresholds
    args = [sys.executable, "-c", RECV_COST_SCRIPT, str(size), str(M_MMAP_THRESHOLD),
            str(mmap_threshold), str(M_TRIM_THRESHOLD), str(trim_threshold), str(count)]
    output = subprocess.run(args, capture_output=True, text=True, check=True,
                            timeout=RECV_COST_TIMEOUT).stdout
    return float(output)


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A fresh event loop: uvloop's for ``uvloop-*`` kinds, asyncio's otherwise."""
    if kind.startswith("uvloop"):
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def start_asyncio_server(loop: asyncio.AbstractEventLoop, kind: str) -> asyncio.Server:
    """Bind a Protocol or streams echo server on loop (loopback, port 0); listening on return."""
    if "streams" in kind:
        coro = asyncio.start_server(echo_stream, LOOPBACK, 0, backlog=BACKLOG)
    else:
        coro = loop.create_server(EchoProtocol, LOOPBACK, 0, backlog=BACKLOG)
    return loop.run_until_complete(coro)


# -- the server process -------------------------------------------------------------
