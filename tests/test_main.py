"""``python -m netserv COMMAND``: every command's error path keeps one contract.

Commands under test: serve, plot, bench, trace and the dispatcher itself
(netserv/__main__.py), each in a fresh interpreter, as a user runs them.
Bad input is reported before any work, in one line on stderr, never as a
traceback, with exit status 2 (argparse's, for usage errors); nothing is
printed on stdout.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Seconds a command may take to refuse its input: an interpreter start and
#: an import on a loaded machine, far less than any run it would start.
REFUSAL_TIMEOUT = 60


def write(folder: pathlib.Path, name: str, content: object) -> str:
    path = folder / name
    path.write_text(json.dumps(content), encoding="utf-8")
    return str(path)


def self_listing(folder: pathlib.Path) -> str:
    path = folder / "itself.json"
    path.write_text(json.dumps([str(path)]), encoding="utf-8")
    return str(path)


def a_result(folder: pathlib.Path) -> str:
    """A file holding one result that plot can draw (only the keys it reads)."""
    return write(folder, "result.json", {"model": "sync", "throughput_rps": 100.0,
                                         "latency_ms": {"p50": 1.0, "p99": 2.0}})


#: (id, argv builder from a temporary folder, what stderr must say). Each
#: must exit with 2 and print nothing on stdout.
CASES = [
    ("unknown-command", lambda d: ["nope"], "unknown command 'nope'"),
    ("serve-prefork-stdlib", lambda d: ["serve", "--model", "prefork", "--impl", "stdlib"],
     "stdlib has no"),
    ("serve-unknown-model", lambda d: ["serve", "--model", "nope"], "invalid choice"),
    ("plot-missing-file", lambda d: ["plot", str(d / "missing.json"), "--out",
                                     str(d / "f.png")], "cannot read"),
    ("plot-json-number", lambda d: ["plot", write(d, "five.json", 5), "--out",
                                    str(d / "f.png")], "holds int 5"),
    ("plot-json-string", lambda d: ["plot", write(d, "x.json", "x"), "--out",
                                    str(d / "f.png")], "cannot read x"),
    ("plot-a-folder", lambda d: ["plot", str(d), "--out", str(d / "f.png")], "cannot read"),
    ("plot-not-json", lambda d: ["plot", str(d / "f.svg"), "--out", str(d / "f.png")],
     "cannot read"),
    ("plot-lists-itself", lambda d: ["plot", self_listing(d), "--out", str(d / "f.png")],
     "lists itself"),
    ("plot-empty-list", lambda d: ["plot", write(d, "empty.json", []), "--out",
                                   str(d / "f.png")], "no results"),
    ("plot-not-a-result", lambda d: ["plot", write(d, "other.json", {"a": 1}), "--out",
                                     str(d / "f.png")], "not a result"),
    ("plot-out-missing-folder", lambda d: ["plot", a_result(d), "--out",
                                           str(d / "nowhere" / "f.png")], "does not exist"),
    ("plot-out-unknown-suffix", lambda d: ["plot", a_result(d), "--out", str(d / "f.xyz")],
     "must end with .png or .svg or .pdf"),
    ("plot-no-out", lambda d: ["plot", a_result(d)], "--out"),
    ("bench-csv-unwritable", lambda d: ["bench", "--model", "sync", "--duration", "0.2",
                                        "--warmup", "0", "--quiet", "--csv",
                                        "/proc/netserv-bench.csv"], "cannot write a file there"),
    ("bench-csv-missing-folder", lambda d: ["bench", "--csv", str(d / "nowhere" / "r.csv")],
     "does not exist"),
    ("bench-bad-clients", lambda d: ["bench", "--clients", "0"], "clients"),
    ("trace-missing-server", lambda d: ["trace", "pool", "--impl", "stdlib"], "stdlib has no"),
    ("trace-unknown-model", lambda d: ["trace", "nope"], "invalid choice"),
]


@pytest.mark.parametrize("argv, said", [pytest.param(build, said, id=name)
                                        for name, build, said in CASES])
def test_bad_input_is_refused_on_stderr_with_status_2(
        argv: object, said: str, tmp_path: pathlib.Path) -> None:
    args = argv(tmp_path)  # type: ignore[operator]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "netserv", *args], capture_output=True,
                            text=True, timeout=REFUSAL_TIMEOUT, env=env, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "f.png").exists()  # refused before drawing anything


def test_plot_draws_a_valid_result(tmp_path: pathlib.Path) -> None:
    """The checks let a real figure through."""
    out = tmp_path / "f.svg"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "netserv", "plot", a_result(tmp_path),
                             "--out", str(out)], capture_output=True, text=True,
                            timeout=REFUSAL_TIMEOUT, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
