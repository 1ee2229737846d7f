"""Wrong: treats each chunk from reader.read() as one line.

A plausible mistake that the checks must reject; the exercise was:
Exercise 11: the numbered, upper-casing line echo of exercise 02, on asyncio streams.

The protocol is exercise 02's, served to many clients at once by one thread:

* the client sends lines ending in ``\\n`` (``\\r\\n`` is accepted too);
* for each line the server replies ``<n> <LINE>\\n``: ``n`` counts the lines
  of *this connection* from 1, and LINE is the line without its line ending,
  with ASCII letters upper-cased (``bytes.upper()``: other bytes pass unchanged);
* a last line without a newline (the client half-closed) is answered too;
* the line ``QUIT`` (any case) is answered ``<n> BYE\\n``, and then the server
  closes the connection.

And two rules of the event loop (notebook 16):

* a client that is slow to send (half a line, then nothing) must not delay
  the others: wait with ``await``, never with a blocking call;
* a client that sends lines and never reads the replies must not make the
  server hold them all: after writing, ``await writer.drain()``, which waits
  while the transport's buffer is above its high-water mark.

Read first: lessons/09_asyncio.md and notebooks/16_from_select_to_asyncio.ipynb;
your exercise 02 (lessons/exercises/ex02_line_echo).
"""

from __future__ import annotations

import asyncio


async def handle_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Serve one connection: read lines from reader, write replies to writer, then close it."""
    number = 0  # a local variable: one coroutine, so one counter, per connection
    try:
        while line := await reader.read(65536):  # one chunk, taken for one line
            number += 1
            text = line.rstrip(b"\r\n")
            if text.upper() == b"QUIT":
                writer.write(b"%d BYE\n" % number)
                await writer.drain()
                return
            writer.write(b"%d %s\n" % (number, text.upper()))
            await writer.drain()  # flow control: wait while the client is not reading
    finally:
        writer.close()  # in every case: end of file, QUIT, or an error


async def start_server(host: str = "127.0.0.1", port: int = 0) -> asyncio.Server:
    """Start serving on host:port (0: the kernel picks a port); listening on return."""
    return await asyncio.start_server(handle_connection, host, port)
