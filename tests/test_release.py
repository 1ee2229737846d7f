"""The students' copy holds the course without its answers, and its checks run.

Theory of operation
-------------------
tools/release.py writes the copy and checks it (no solution block's text
anywhere, no instructor's file, every exercise's starter and checks, every
Markdown link resolving). These tests build a copy into a temporary folder
with the tool's own command, then look at it from outside: the instructor's
files are gone, the students' are there, the tool's solution-text check can
fail (a copy with a solution put back in is refused), and ``make check
EX=05`` run inside the copy runs the checks of exercise 05 on its starter,
which fail, as they must before a student's work.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Seconds the checks of one exercise may take on the starter (each fails at once).
CHECK_TIMEOUT = 120


def load_tool() -> Any:
    name = "netserv_tools_release"
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


release = load_tool()


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("release") / "student"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "release.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out.parent / "netserv-student.tar.gz").exists()
    return out


def test_the_answers_and_the_instructors_files_are_gone(copy: pathlib.Path) -> None:
    names = [str(path.relative_to(copy)) for path in copy.rglob("*")]
    assert not [n for n in names if n.endswith("solution.py") or "/wrong" in f"/{n}"]
    assert not (copy / ".git").exists()
    assert not (copy / "lessons" / "instructor_notes.md").exists()
    assert not (copy / "tests").exists()
    assert "instructor-only" not in (copy / "lessons" / "README.md").read_text(encoding="utf-8")


def test_the_course_is_intact(copy: pathlib.Path) -> None:
    exercises = sorted(p.name for p in (ROOT / "lessons" / "exercises").glob("ex*/test_checks.py")
                       for p in [p.parent])
    assert exercises and exercises == sorted(
        p.parent.name for p in (copy / "lessons" / "exercises").glob("ex*/test_checks.py"))
    for name in exercises:
        for kept in ("README.md", "starter.py", "test_checks.py"):
            original = ROOT / "lessons" / "exercises" / name / kept
            assert (copy / "lessons" / "exercises" / name / kept).read_bytes() == (
                original.read_bytes()), f"{name}/{kept} changed in the copy"
    notebooks = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks == sorted(p.name for p in (copy / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    pages = sorted(p.name for p in (ROOT / "lessons").glob("[0-9][0-9]_*.md"))
    assert pages == sorted(p.name for p in (copy / "lessons").glob("[0-9][0-9]_*.md"))
    assert (copy / ".github" / "workflows" / "classroom.yml").exists()


def test_solution_text_put_back_is_found(copy: pathlib.Path, tmp_path: pathlib.Path) -> None:
    spoiled = tmp_path / "spoiled"
    shutil.copytree(copy, spoiled)
    solution = next((ROOT / "lessons" / "exercises").glob("ex05_*/solution.py"))
    hidden = spoiled / "notebooks" / "notes.txt"
    hidden.write_text("    " + solution.read_text(encoding="utf-8").replace("\n", "\n  "),
                      encoding="utf-8")
    found = release.problems(ROOT, spoiled)
    assert any(line.startswith("notebooks/notes.txt: holds solution block") for line in found)
    assert release.problems(ROOT, copy) == []


def test_make_check_runs_in_the_copy_and_fails_on_the_starter(copy: pathlib.Path,
                                                              tmp_path: pathlib.Path) -> None:
    stamp = tmp_path / "stamp"  # stands for the copy's installed .venv: this one's Python
    stamp.touch()
    env = dict(os.environ, MAKEFLAGS="", PYTHONPATH=str(copy))  # the copy's netserv
    env.pop("NETSERV_EXERCISE_TARGET", None)
    env.pop("NETSERV_EXERCISE_MAP", None)
    done = subprocess.run(["make", "-s", "--no-print-directory", "check", "EX=05",
                           f"PY={sys.executable}", f"TEST_STAMP={stamp}"], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=CHECK_TIMEOUT, check=False)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "the checks of lessons/exercises/ex05_shared_counter, on your" in output, output
    summary = done.stdout.strip().splitlines()[-1]  # pytest's; make adds its own to stderr
    assert re.search(r"\d+ failed", summary) and "error" not in summary, output[-3000:]
    assert "lessons/exercises/ex05_shared_counter/test_checks.py" in output, output[-3000:]
