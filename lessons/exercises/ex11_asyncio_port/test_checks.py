"""Checks for exercise 11 (see README.md): exercise 02's line echo on asyncio streams.

Each check runs your start_server() on an event loop in a thread of its own,
talks to it over real sockets on 127.0.0.1 and looks at the replies byte for
byte. Whatever your handler raises is recorded and reported by the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.timeout(60)

def kernel_buffer_limit() -> int:
    """The most a TCP receive buffer and a send buffer can grow to here (Linux), in bytes."""
    sysctl = "/proc/sys/net/ipv4/"
    try:
        with open(sysctl + "tcp_rmem") as rmem, open(sysctl + "tcp_wmem") as wmem:
            return int(rmem.read().split()[2]) + int(wmem.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 16 * 2**20  # other systems: smaller defaults than Linux's largest


#: Bytes a client sends without reading in the flow-control check: more than
#: the kernel's buffers on both sides can absorb once the server stops reading
#: (the server's receive buffer may grow to tcp_rmem's maximum), bounded so
#: that a server without flow control holds at most a few hundred MiB.
FLOOD = min(2 * kernel_buffer_limit() + 8 * 2**20, 256 * 2**20)
#: Seconds without room to send after which that client concludes the server
#: stopped reading.
STALL = 1.0
#: Seconds a check waits for the loop to start or stop.
LOOP_TIMEOUT = 10.0


@contextlib.contextmanager
def serving(exercise: Any) -> Iterator[tuple[str, int]]:
    """Run exercise.start_server() on a new event loop in a thread; yield its address.

    The handler is wrapped so that an exception it raises is recorded (and
    the connection closed at once), except a ConnectionError: a client that
    resets its connection is no fault of the handler's; at the end every task is cancelled, the
    loop stopped and closed, and recorded errors fail the check.
    """
    loop = asyncio.new_event_loop()
    errors: list[BaseException] = []
    thread = threading.Thread(target=loop.run_forever, name="exercise-loop", daemon=True)
    thread.start()

    original = exercise.handle_connection

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await original(reader, writer)
        except ConnectionError:
            # The client reset the connection (a check that closes a socket with
            # replies unread does): the client's doing, not the handler's bug.
            writer.close()
        except Exception as exc:  # shown by the check, not lost in the loop's log
            errors.append(exc)
            writer.close()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(LOOP_TIMEOUT)

    async def start() -> asyncio.Server:
        exercise.handle_connection = guarded  # start_server() looks the name up now
        try:
            return await exercise.start_server("127.0.0.1", 0)
        finally:
            exercise.handle_connection = original

    async def stop(server: asyncio.Server) -> None:
        server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        server = run(start())
        try:
            yield server.sockets[0].getsockname()[:2]
        finally:
            run(stop(server))
    except BaseException as exc:
        if errors:
            exc.add_note("the server side raised: " + "; ".join(map(repr, errors)))
        raise
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(LOOP_TIMEOUT)
        loop.close()
    if errors:
        pytest.fail("the server side raised: " + "; ".join(map(repr, errors)), pytrace=False)


def test_one_line_is_numbered_and_upper_cased(exercise, connect):
    with serving(exercise) as address, connect(address) as client:
        assert client.ask(b"hello\n") == b"1 HELLO\n"


def test_lines_are_numbered_per_connection(exercise, connect):
    with serving(exercise) as address, connect(address) as first, connect(address) as second:
        assert first.ask(b"a\n") == b"1 A\n"
        assert second.ask(b"b\n") == b"1 B\n", "each connection counts from 1"
        assert first.ask(b"c\n") == b"2 C\n"


def test_a_line_sent_in_pieces_gets_one_reply(exercise, connect):
    with serving(exercise) as address, connect(address) as client:
        client.send(b"hel")
        client.send(b"lo wor")
        client.send(b"ld\n")
        assert client.line() == b"1 HELLO WORLD\n", "reply once per line, not once per read"


def test_several_lines_in_one_send_get_one_reply_each(exercise, connect):
    with serving(exercise) as address, connect(address) as client:
        client.send(b"one\r\ntwo\n\xff\xfe\n")
        assert [client.line() for _ in range(3)] == [b"1 ONE\n", b"2 TWO\n", b"3 \xff\xfe\n"]


def test_quit_says_bye_and_closes(exercise, connect):
    with serving(exercise) as address, connect(address) as client:
        assert client.ask(b"x\n") == b"1 X\n"
        assert client.ask(b"Quit\n") == b"2 BYE\n"
        assert client.line() == b"", "the server should close the connection after QUIT"


def test_last_line_without_newline_is_answered(exercise, connect):
    with serving(exercise) as address, connect(address) as client:
        client.send(b"first\nlast")
        client.sock.shutdown(socket.SHUT_WR)
        assert client.line() == b"1 FIRST\n"
        assert client.line() == b"2 LAST\n"
        assert client.line() == b"", "close the connection at end of file"


def test_a_slow_client_does_not_delay_the_others(exercise, connect):
    with serving(exercise) as address, connect(address) as slow:
        slow.send(b"half a li")  # ... and nothing more for now
        with connect(address) as other:
            assert other.ask(b"quick\n") == b"1 QUICK\n", "one client's half line held the others"
        slow.send(b"ne\n")
        assert slow.line() == b"1 HALF A LINE\n"


def test_a_client_that_never_reads_is_slowed_down(exercise):
    """Flow control: the server stops reading while its replies are not read."""
    line = b"x" * 1023 + b"\n"
    with serving(exercise) as address, socket.create_connection(address, timeout=5) as sock:
        sock.setblocking(False)
        chunk, sent = line * 64, 0
        deadline = time.monotonic() + 30
        while sent < FLOOD and time.monotonic() < deadline:
            if not select.select([], [sock], [], STALL)[1]:
                break  # no room for STALL seconds: the server stopped reading
            try:
                sent += sock.send(chunk)
            except BlockingIOError:
                pass
        assert sent < FLOOD, (
            f"the server read all {FLOOD // 2**20} MiB although the client read no reply: "
            "it holds every reply in memory (await writer.drain() after writing)")
