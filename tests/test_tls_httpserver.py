"""netserv injected as ``socketserver`` fixes http.server's HTTPS wedge.

Python 3.14's ``http.server.ThreadingHTTPSServer`` wraps the *listening*
socket in ``server_activate()``, so with the standard module accept()
performs each TLS handshake in the loop's thread: one silent client and
nobody else is served. With netserv as ``socketserver`` underneath, the
connection is accepted plain and the handshake runs in the request's thread
(netserv.handshake). Before 3.14 the same pattern is written out here; on
3.14 and later the real class is tested as well.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib
import json
import os
import pathlib
import socketserver
import subprocess
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from test_tls import DEAF_TIMEOUT, WAIT, failure_lines, plain_client, remote_client, wait_closed

import netserv
from netserv.lab.certs import CourseCA

import support

pytest.importorskip("trustme")

ROOT = pathlib.Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def http_server_on(module: ModuleType) -> Iterator[ModuleType]:
    """A fresh ``http.server`` imported with ``module`` as ``socketserver``."""
    saved = {name: sys.modules.get(name) for name in ("socketserver", "http.server")}
    sys.modules["socketserver"] = module
    sys.modules.pop("http.server", None)
    try:
        yield importlib.import_module("http.server")
    finally:
        for name, value in saved.items():
            if value is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = value


def https_server_class(http_server: ModuleType, ca: CourseCA) -> type:
    """The standard library's pattern: a ThreadingHTTPServer whose server_activate()
    wraps the listening socket with handshake-on-connect (3.14's ThreadingHTTPSServer
    does exactly this)."""
    context = ca.server_context()

    class ThreadingHTTPSServer(http_server.ThreadingHTTPServer):  # type: ignore[name-defined, misc]
        daemon_threads = True

        def server_activate(self) -> None:
            super().server_activate()
            self.socket = context.wrap_socket(self.socket, server_side=True)

    return ThreadingHTTPSServer


def handler_class(http_server: ModuleType) -> type:
    class Hello(http_server.BaseHTTPRequestHandler):  # type: ignore[name-defined, misc]
        def do_GET(self) -> None:
            body = b"hello\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would drown the output

    return Hello


def https_get(ca: CourseCA, server: Any, timeout: float) -> int:
    host, port = server.server_address[:2]
    conn = http.client.HTTPSConnection(host, port, timeout=timeout,
                                       context=ca.client_context())
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.read() == b"hello\n"
        return response.status
    finally:
        conn.close()


@pytest.fixture(scope="module")
def ca() -> CourseCA:
    return CourseCA()


def test_stdlib_pattern_is_deaf_on_the_standard_module(ca: CourseCA) -> None:
    with http_server_on(socketserver) as http_server:
        cls = https_server_class(http_server, ca)
        server = cls(("127.0.0.1", 0), handler_class(http_server))
    with support.serving(server):
        assert https_get(ca, server, WAIT) == 200
        with remote_client(server):
            with pytest.raises(TimeoutError):
                https_get(ca, server, DEAF_TIMEOUT)


def test_stdlib_pattern_serves_everyone_on_netserv(ca: CourseCA) -> None:
    with http_server_on(netserv) as http_server:
        cls = https_server_class(http_server, ca)
        server = cls(("127.0.0.1", 0), handler_class(http_server))
    assert isinstance(server, netserv.TCPServer)
    with support.serving(server):
        with remote_client(server):
            assert https_get(ca, server, DEAF_TIMEOUT) == 200
            assert https_get(ca, server, DEAF_TIMEOUT) == 200


def test_stdlib_pattern_reports_a_failed_handshake_in_one_line(
        ca: CourseCA, capfd: pytest.CaptureFixture[str]) -> None:
    with http_server_on(netserv) as http_server:
        cls = https_server_class(http_server, ca)
        server = cls(("127.0.0.1", 0), handler_class(http_server))
    with support.serving(server):
        with plain_client(server) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert not wait_closed(sock).startswith(b"HTTP")
        lines = failure_lines(capfd, 1)
        assert https_get(ca, server, WAIT) == 200
    assert sum("TLS handshake" in line for line in lines) == 1, lines
    assert not any("Traceback" in line for line in lines), lines


@pytest.mark.skipif(sys.version_info < (3, 14),
                    reason="http.server.ThreadingHTTPSServer is new in Python 3.14")
def test_threading_https_server_serves_everyone_on_netserv(ca: CourseCA) -> None:
    with ca.files() as files, http_server_on(netserv) as http_server:
        server = http_server.ThreadingHTTPSServer(
            ("127.0.0.1", 0), handler_class(http_server), certfile=files.cert)
        server.daemon_threads = True
        with support.serving(server):
            with remote_client(server):
                assert https_get(ca, server, DEAF_TIMEOUT) == 200
                assert https_get(ca, server, DEAF_TIMEOUT) == 200


@pytest.mark.skipif(sys.version_info < (3, 14),
                    reason="http.server.ThreadingHTTPSServer is new in Python 3.14")
def test_threading_https_server_is_deaf_on_the_standard_module(ca: CourseCA) -> None:
    with ca.files() as files, http_server_on(socketserver) as http_server:
        server = http_server.ThreadingHTTPSServer(
            ("127.0.0.1", 0), handler_class(http_server), certfile=files.cert)
        server.daemon_threads = True
        with support.serving(server):
            with remote_client(server):
                with pytest.raises(TimeoutError):
                    https_get(ca, server, DEAF_TIMEOUT)


# -- the real ThreadingHTTPSServer on every Python from 3.14 this machine has -------------

#: One run of http.server.ThreadingHTTPSServer in another interpreter, with netserv or the
#: standard module as ``socketserver``: needs only the standard library and netserv's source
#: (trustme, which makes the certificates, runs here). Prints what a second client saw
#: before, while and after one client sat connected and silent: 200 or "timeout".
NEWER_PYTHON_RUN = r"""
import http.client, json, socket, ssl, sys, threading
impl, certfile, cafile, silent_timeout = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if impl == "netserv":
    import netserv
    sys.modules["socketserver"] = netserv
import http.server

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass

server = http.server.ThreadingHTTPSServer(("127.0.0.1", 0), Hello, certfile=certfile)
server.daemon_threads = True
thread = threading.Thread(target=server.serve_forever)
thread.start()
context = ssl.create_default_context(cafile=cafile)

def get(timeout):
    conn = http.client.HTTPSConnection("127.0.0.1", server.server_address[1],
                                       timeout=timeout, context=context)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status if response.read() == b"hello\n" else "wrong body"
    except TimeoutError:
        return "timeout"
    finally:
        conn.close()

seen = {"before": get(10.0)}
with socket.create_connection(server.server_address[:2]):  # connected, silent
    seen["while_silent"] = get(silent_timeout)
seen["after"] = get(10.0)
server.shutdown()
server.server_close()
thread.join()
print(json.dumps({"socketserver": sys.modules["socketserver"].__name__, **seen}))
"""
#: Seconds a run in another interpreter may take (start-up included).
NEWER_PYTHON_RUN_TIMEOUT = 60


def newer_interpreters() -> list[Any]:
    """Every CPython from 3.14 that tools/interpreters.py finds, or a visible skip."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from interpreters import find_interpreters
    finally:
        sys.path.pop(0)
    params = []
    for found in find_interpreters():
        if tuple(map(int, found.version.split("."))) < (3, 14):
            continue
        marks = [] if found.path else [pytest.mark.skip(
            reason=f"SKIP python{found.version}: {found.why_missing} (make pythons)")]
        params.append(pytest.param(found.path, id=found.version, marks=marks))
    return params


@pytest.mark.parametrize("python", newer_interpreters())
@pytest.mark.parametrize("impl", ["netserv", "socketserver"])
def test_the_real_threading_https_server_with_one_silent_client(
        ca: CourseCA, python: str, impl: str) -> None:
    with ca.files() as files:
        done = subprocess.run(
            [python, "-c", NEWER_PYTHON_RUN, impl, files.cert, files.ca, str(DEAF_TIMEOUT)],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True, text=True, timeout=NEWER_PYTHON_RUN_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["socketserver"] == impl
    assert (seen["before"], seen["after"]) == (200, 200), seen
    # The standard module's accept() waits for the silent client's handshake: deaf.
    assert seen["while_silent"] == (200 if impl == "netserv" else "timeout"), seen
