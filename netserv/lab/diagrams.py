"""Diagrams drawn by code: TCP and TLS conversations, the pipeline, a deaf server, the lifecycle.

Theory of operation
-------------------
Each diagram is a function that returns a matplotlib Figure, drawn in one
axes whose data units are inches (netserv.lab.drawing: :data:`WIDTH` inches
wide, text of at least :data:`FONT` points, the boxes and arrows every
diagram shares).

Where a notebook can observe what a diagram shows, the diagram takes the
observation as data instead of restating the textbook:

* :func:`tcp_sequence` draws a list of :class:`Step` s; the notebook fills in
  the socket states it read with :func:`connection_states` (Linux's
  /proc/net/tcp) after each step. :data:`TEXTBOOK_STEPS` is the fallback
  where nothing can be read; states the notebook did not observe are drawn
  in grey italics, observed ones in black.
* :func:`lifecycle` draws a transition table ``{(state, step): state}``, the
  one ``netserv.base.TRANSITIONS`` the server itself obeys.
* :func:`deaf_server` takes client B's measured wait.
* :func:`tls_sequence` is TCP's handshake of :data:`TEXTBOOK_STEPS` followed
  by TLS 1.3's (RFC 8446), with the round trip each row belongs to.
* :func:`pipeline` is the order of BaseServer's hooks, which the notebooks
  check with the tracer.

matplotlib is imported inside the drawing functions only; reading socket
states uses the standard library alone and never raises.
"""

from __future__ import annotations

import dataclasses
import socket
import sys
from collections.abc import Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING

from .drawing import FONT, TITLE_FONT, WIDTH, canvas, link, node
from .statechart import lifecycle as draw_lifecycle
from .timeline import PHASES, phase_of
from .trace_events import HANDLER_PREFIX

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

__all__ = ["FONT", "TCP_STATES", "TEXTBOOK_STEPS", "TLS_STEPS", "WIDTH", "Step",
           "connection_states", "deaf_server", "lifecycle", "pipeline", "tcp_sequence",
           "tls_sequence"]

#: Height of one step of a sequence diagram, and of its header, in inches.
_STEP, _HEADER = 0.42, 0.9
#: Linux's TCP state numbers (include/net/tcp_states.h), as /proc/net/tcp
#: writes them in hexadecimal.
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1",
              "05": "FIN_WAIT2", "06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT",
              "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}
_PROC_NET_TCP = "/proc/net/tcp"


# -- reading socket states -----------------------------------------------------------


#: /proc/net/tcp writes an IPv4 address as one 32-bit number in the
#: machine's own byte order: reversed bytes on little-endian machines.
_LITTLE_ENDIAN = sys.byteorder == "little"


def _hex_address(address: tuple[str, int]) -> str:
    """127.0.0.1:8080 as /proc/net/tcp writes it: 0100007F:1F90 on a
    little-endian machine. Raises OSError for anything but dotted IPv4."""
    packed = socket.inet_aton(address[0])
    host = packed[::-1].hex().upper() if _LITTLE_ENDIAN else packed.hex().upper()
    return f"{host}:{address[1]:04X}"


def connection_states(client: tuple[str, int], server: tuple[str, int],
                      table: str = _PROC_NET_TCP) -> tuple[str | None, str | None]:
    """States of both ends of one IPv4 TCP connection: (client's end, server's end).

    ``client`` and ``server`` are the two (host, port) addresses. Reads
    Linux's /proc/net/tcp; an end that has no row (closed and gone, or not
    yet made) is None, and so is everything on a system without that file
    or for an address that is not IPv4. Never raises.
    """
    try:
        mine, theirs = _hex_address(client), _hex_address(server)
        with open(table) as rows:
            lines = rows.readlines()[1:]
    except OSError:
        return None, None
    ends = {}
    for line in lines:
        fields = line.split()
        if len(fields) > 3:
            ends[fields[1], fields[2]] = TCP_STATES.get(fields[3], fields[3])
    return ends.get((mine, theirs)), ends.get((theirs, mine))


# -- the sequence-diagram engine --------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Step:
    """One row of a sequence diagram.

    An arrow from ``sender`` to ``receiver`` (two lifeline names) labelled
    ``label``; with ``receiver`` None, a note on the sender's lifeline.
    ``states`` maps a state column's name to the state written in it on this
    row; ``observed`` says whether those states were read from the system
    (black) or are the textbook's (grey italics).
    """

    label: str
    sender: str
    receiver: str | None = None
    states: Mapping[str, str] = dataclasses.field(default_factory=dict)
    observed: bool = False


def _sequence(title: str, lifelines: Mapping[str, float], columns: Mapping[str, float],
              steps: Sequence[Step], spans: Sequence[tuple[str, int, int, str]] = ()) -> Figure:
    """Lifelines at the given x (inches), one row per step; ``columns``: state
    columns (name -> x); ``spans``: (lifeline, first row, last row, label)
    bars drawn on a lifeline over several rows."""
    height = _HEADER + _STEP * (len(steps) + 0.6)
    fig, ax = canvas(height)
    ax.text(0.1, 0.22, title, fontsize=TITLE_FONT, weight="bold", va="center")
    for name, x in {**lifelines, **columns}.items():
        ax.text(x, 0.62, name, ha="center", va="center", fontsize=FONT,
                weight="bold" if name in lifelines else "normal",
                style="normal" if name in lifelines else "italic",
                bbox={"boxstyle": "round,pad=0.3", "facecolor": "#dbe9f6"} if name in lifelines
                else None)
    for x in lifelines.values():
        ax.plot([x, x], [0.8, height - 0.1], color="#888888", lw=1.0, ls="--", zorder=0)

    def row_y(row: int) -> float:
        return _HEADER + _STEP * (row + 0.5)

    for name, first, last, label in spans:
        x = lifelines[name]
        top, bottom = row_y(first) - _STEP / 2, row_y(last) + _STEP / 2
        ax.add_patch(_rectangle(x - 0.09, top, 0.18, bottom - top, "#fdae6b"))
        ax.text(x + 0.16, (top + bottom) / 2, label, fontsize=FONT, va="center", ha="left",
                rotation=90 if bottom - top > 1.2 else 0, color="#7f3b08")
    for row, step in enumerate(steps):
        y = row_y(row)
        x0 = lifelines[step.sender]
        if step.receiver is None:
            ax.text(x0, y, step.label, fontsize=FONT, ha="center", va="center", zorder=3,
                    bbox={"boxstyle": "round,pad=0.25", "facecolor": "#fff7bc",
                          "edgecolor": "#d08020"})
        else:
            x1 = lifelines[step.receiver]
            ax.annotate("", xy=(x1, y + 0.06), xytext=(x0, y + 0.06), zorder=2,
                        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2,
                                    "shrinkA": 2, "shrinkB": 2})
            ax.text((x0 + x1) / 2, y - 0.03, step.label, fontsize=FONT, ha="center",
                    va="bottom", zorder=3, bbox={"boxstyle": "square,pad=0.05",
                                                 "facecolor": "white", "edgecolor": "none"})
        for column, state in step.states.items():
            ax.text(columns[column], y, state, fontsize=FONT, ha="center", va="center",
                    color="black" if step.observed else "#666666",
                    style="normal" if step.observed else "italic")
    return fig


def _rectangle(x: float, y: float, width: float, height: float, colour: str) -> Rectangle:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), width, height, facecolor=colour, edgecolor="#555555", zorder=1)


# -- 02: TCP's conversation ------------------------------------------------------------

_CLIENT, _KERNEL, _SERVER = "client", "server's kernel", "server (TCPServer)"
_CLIENT_END, _SERVER_END = "client's end", "server's end"

#: The textbook conversation of one echo request, with the states Linux
#: reports for both ends after each step (RFC 9293's names, as ss prints them).
TEXTBOOK_STEPS: tuple[Step, ...] = (
    Step("SYN", _CLIENT, _KERNEL, {_CLIENT_END: "SYN_SENT"}),
    Step("SYN-ACK", _KERNEL, _CLIENT, {_SERVER_END: "SYN_RECV"}),
    Step("ACK: into the accept queue", _CLIENT, _KERNEL,
         {_CLIENT_END: "ESTABLISHED", _SERVER_END: "ESTABLISHED"}),
    Step("accept(): get_request()", _SERVER, _KERNEL,
         {_CLIENT_END: "ESTABLISHED", _SERVER_END: "ESTABLISHED"}),
    Step("data: hello", _CLIENT, _SERVER),
    Step("data: hello (echo)", _SERVER, _CLIENT),
    Step("FIN: shutdown(SHUT_WR)", _SERVER, _CLIENT,
         {_CLIENT_END: "CLOSE_WAIT", _SERVER_END: "FIN_WAIT2"}),
    Step("FIN: the client closes", _CLIENT, _SERVER,
         {_CLIENT_END: "(gone)", _SERVER_END: "TIME_WAIT"}),
    Step("TIME_WAIT: 60 s on Linux", _KERNEL),
)


def tcp_sequence(steps: Sequence[Step] = TEXTBOOK_STEPS,
                 title: str = "One TCP connection, from SYN to TIME_WAIT") -> Figure:
    """A sequence diagram of one connection: client, the server's kernel, the
    server process, and a state column for each end of the connection.

    Lifeline names: "client", "server's kernel", "server (TCPServer)"; state
    columns: "client's end", "server's end" (see Step).
    """
    return _sequence(title, {_CLIENT: 1.9, _KERNEL: 3.9, _SERVER: 5.65},
                     {_CLIENT_END: 0.62, _SERVER_END: 7.3}, steps)


# -- 17: TLS 1.3 on top of TCP --------------------------------------------------------

_ROUND_TRIP = "round trip"

#: One HTTPS request on a new connection: TCP's handshake (as in
#: TEXTBOOK_STEPS), then TLS 1.3's full handshake (RFC 8446, section 2), then
#: the request. The column says which of the client's round trips a row is in.
TLS_STEPS: tuple[Step, ...] = (
    Step("SYN", _CLIENT, _SERVER, {_ROUND_TRIP: "1: TCP"}),
    Step("SYN-ACK", _SERVER, _CLIENT, {_ROUND_TRIP: "1: TCP"}),
    Step("ACK", _CLIENT, _SERVER, {_ROUND_TRIP: "(no wait)"}),
    Step("ClientHello: versions, ciphers, SNI, key share", _CLIENT, _SERVER,
         {_ROUND_TRIP: "2: TLS"}),
    Step("ServerHello: key share (encrypted from here)", _SERVER, _CLIENT,
         {_ROUND_TRIP: "2: TLS"}),
    Step("EncryptedExtensions, Certificate", _SERVER, _CLIENT, {_ROUND_TRIP: "2: TLS"}),
    Step("CertificateVerify (signature), Finished", _SERVER, _CLIENT,
         {_ROUND_TRIP: "2: TLS"}),
    Step("Finished + the request", _CLIENT, _SERVER, {_ROUND_TRIP: "3: data"}),
    Step("session tickets, the response", _SERVER, _CLIENT, {_ROUND_TRIP: "3: data"}),
)


def tls_sequence(steps: Sequence[Step] = TLS_STEPS,
                 title: str = "A new HTTPS connection: TCP's handshake, then TLS 1.3's") -> Figure:
    """A sequence diagram of TCP's and TLS 1.3's handshakes and one request.

    Lifeline names: "client", "server (TCPServer)"; state column: "round trip"
    (see Step). Rows in TLS_STEPS' order; no socket states are drawn.
    """
    return _sequence(title, {_CLIENT: 2.0, _SERVER: 6.6}, {_ROUND_TRIP: 0.6}, steps)


# -- 07: the deaf server ----------------------------------------------------------------


def deaf_server(wait_ms: float | None = None) -> Figure:
    """Client A, client B, the server's kernel and the synchronous server's
    one thread while A keeps the server in handle(); ``wait_ms``: B's
    measured wait, written on the diagram."""
    a, b, kernel, server = "client A", "client B", "server's kernel", "server thread"
    waited = f"B waits {wait_ms:.0f} ms" if wait_ms is not None else "B waits"
    steps = [
        Step("connect: handshake", a, kernel),
        Step("accept() A", server, kernel),
        Step("handle(): readline() waits for A", server),
        Step("connect: handshake done", b, kernel),
        Step("B queued in the listen backlog", kernel),
        Step("B's line: into the receive buffer", b, kernel),
        Step(f"nobody calls accept(): {waited}", kernel),
        Step("A's line, then A closes", a, server),
        Step("accept() B, at last", server, kernel),
        Step("echo to B", server, b),
    ]
    return _sequence("A synchronous server is deaf while one handle() waits",
                     {a: 0.8, b: 2.4, kernel: 4.4, server: 6.5}, {}, steps,
                     spans=[(server, 2, 7, "A's handle()")])


# -- 01: the pipeline -----------------------------------------------------------------


def pipeline() -> Figure:
    """BaseServer's pipeline for one request: the main path down the left,
    the refusal and the error path on the right (as in _handle_request_noblock).
    Boxes take the colours of the phases in the trace timeline."""
    fig, ax = canvas(6.5)
    ax.text(0.1, 0.22, "One request through BaseServer's hooks", fontsize=TITLE_FONT,
            weight="bold", va="center")
    main_x, side_x, width = 2.0, 6.2, 2.7
    main = ["get_request()  (accept)", "verify_request()", "process_request()",
            "finish_request()", "handler: setup()", "handler: handle()", "handler: finish()",
            "shutdown_request()", "close_request()"]
    ys = [0.75 + 0.62 * i for i in range(len(main))]
    for index, (label, y) in enumerate(zip(main, ys, strict=True)):
        node(ax, main_x, y, width, label, _colour(label))
        if index:
            link(ax, (main_x, ys[index - 1] + 0.17), (main_x, y - 0.17))
    # process_request() runs finish_request() and shutdown_request(): a bracket.
    bracket_x = main_x + width / 2 + 0.2
    ax.plot([bracket_x] * 2, [ys[3] - 0.2, ys[8] + 0.2], color="#7b5ea7", lw=2)
    ax.text(bracket_x + 0.1, (ys[3] + ys[5]) / 2, "inside\nprocess_request()", ha="left",
            va="center", fontsize=FONT, color="#7b5ea7")
    # Refused: verify_request() returned False.
    side_width = 2.6
    node(ax, side_x, ys[1], side_width, "shutdown_request()\n→ close_request()",
          _colour("close_request"), lines=2)
    link(ax, (main_x + width / 2, ys[1]), (side_x - side_width / 2, ys[1]), "False: refused")
    # An Exception anywhere in process_request(): handle_error, then shut down.
    error_y = ys[7]
    node(ax, side_x, error_y, side_width, "handle_error()", _colour("handle_error"))
    node(ax, side_x, error_y + 0.85, side_width, "shutdown_request()\n→ close_request()",
          _colour("close_request"), lines=2)
    link(ax, (side_x, error_y + 0.17), (side_x, error_y + 0.6))
    link(ax, (bracket_x, error_y), (side_x - side_width / 2, error_y), "an Exception")
    return fig


def _colour(label: str) -> str:
    """The timeline's colour for the phase of the hook a label names."""
    hook = label.split("(")[0].replace("handler: ", HANDLER_PREFIX)
    return PHASES[phase_of(hook)][1]


# -- the lifecycle (drawn in netserv.lab.statechart) ------------------------------------


def lifecycle(transitions: Mapping[tuple[Enum, str], Enum],
              title: str = "A server's life: states and the steps between them") -> Figure:
    """Draw a transition table as a state diagram: netserv.lab.statechart.lifecycle()."""
    return draw_lifecycle(transitions, title)
