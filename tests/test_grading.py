"""Grading gives full marks to the solutions, nothing to the starters, part to a mistake.

Theory of operation
-------------------
tools/grade.py runs an exercise's checks on any module and adds up the points
of lessons/grading.toml. This file proves the scale on every exercise, with
the same code a teacher runs: each solution.py scores 100 %, each committed
starter.py 0 %, and for each exercise some wrong variant (a whole module with
one mistake, or a patch to the solution with one: both forms are read) a
score strictly between. Wrong variants are tried in order, all exercises at
once per round, until each exercise has one that scores in between; a variant
that every check rejects (0 %) is no proof of partial credit, so the next one
is tried.

The solutions are graded first, alone (exercise 08's checks measure
throughput, which other runs at the same time would take); then the starters
and the rounds of variants, side by side (about 40 s in all on a quiet
2-core machine). The points table
must list every check of every exercise, and GitHub Classroom's files must be
what the tool generates from it.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
#: Seconds a check waits for a reply from a wrong variant (5 for students).
WRONG_CLIENT_TIMEOUT = 2.0


def load_tool() -> Any:
    name = "netserv_tools_grade"
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "grade.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


grade = load_tool()
DIRS = grade.exercise_dirs()
NAMES = [directory.name for directory in DIRS]


def wrong_variants(directory: pathlib.Path, tmp: pathlib.Path) -> list[pathlib.Path]:
    """The wrong variants of an exercise as modules: wrong/*.py as they are,
    wrong/*.patch (or .diff) applied to a copy of solution.py in *tmp*."""
    found = []
    for path in sorted((directory / "wrong").glob("*")):
        if path.suffix == ".py" and not path.name.startswith("_"):
            found.append(path)
        elif path.suffix in (".patch", ".diff"):
            patch = shutil.which("patch")
            assert patch, "applying a wrong variant's patch needs the patch program"
            out = tmp / f"{directory.name}-{path.stem}.py"
            subprocess.run([patch, "--silent", "-o", str(out), str(directory / "solution.py"),
                            str(path)], check=True, timeout=30, capture_output=True)
            found.append(out)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("grading")
    wrong_env = dict(os.environ, NETSERV_EXERCISE_CLIENT_TIMEOUT=str(WRONG_CLIENT_TIMEOUT))
    variants = {d.name: wrong_variants(d, tmp) for d in DIRS}
    # The solutions first, alone: ex08's checks measure throughput, and the
    # other runs would take the cores they measure.
    solutions = grade.grade({d.name: d / "solution.py" for d in DIRS})
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        starters = pool.submit(grade.grade, {d.name: d / "starter.py" for d in DIRS})
        partial: dict[str, tuple[pathlib.Path, float]] = {}
        tried: dict[str, list[str]] = {name: [] for name in NAMES}
        for index in range(max(map(len, variants.values()), default=0)):
            targets = {name: paths[index] for name, paths in variants.items()
                       if name not in partial and index < len(paths)}
            if not targets:
                break
            scores, _ = pool.submit(grade.grade, targets, grade.ROOT, wrong_env).result()
            for score in scores:
                tried[score.exercise].append(f"{targets[score.exercise].stem}: {score.percent} %")
                if 0 < score.percent < 100:
                    partial[score.exercise] = (targets[score.exercise], score.percent)
        return {"solution": solutions, "starter": starters.result(),
                "partial": partial, "tried": tried}


def percent_of(run: tuple[list[Any], str], name: str) -> tuple[float, str]:
    scores, output = run
    score = next(s for s in scores if s.exercise == name)
    return score.percent, grade.as_text([score]) + "\n" + output[-3000:]


@pytest.mark.timeout(grade.RUN_TIMEOUT + 60)
@pytest.mark.parametrize("name", NAMES)
def test_full_marks_on_the_solution(graded: dict[str, Any], name: str) -> None:
    percent, said = percent_of(graded["solution"], name)
    assert percent == 100, said


@pytest.mark.timeout(grade.RUN_TIMEOUT + 60)
@pytest.mark.parametrize("name", NAMES)
def test_nothing_for_the_starter(graded: dict[str, Any], name: str) -> None:
    percent, said = percent_of(graded["starter"], name)
    assert percent == 0, said


@pytest.mark.timeout(grade.RUN_TIMEOUT + 60)
@pytest.mark.parametrize("name", NAMES)
def test_part_of_the_marks_for_a_wrong_variant(graded: dict[str, Any], name: str) -> None:
    assert name in graded["partial"], (
        f"{name}: no wrong variant scores between 0 and 100 %: {graded['tried'][name]}")


def test_the_command_prints_text_and_json(tmp_path: pathlib.Path) -> None:
    directory = DIRS[0]
    variant = wrong_variants(directory, tmp_path)[0]
    command = [sys.executable, str(ROOT / "tools" / "grade.py"), "--exercise",
               directory.name[2:4], "--module", str(variant)]
    env = dict(os.environ, NETSERV_EXERCISE_CLIENT_TIMEOUT=str(WRONG_CLIENT_TIMEOUT))
    as_json = subprocess.run([*command, "--json"], capture_output=True, text=True, env=env,
                             timeout=grade.RUN_TIMEOUT, check=True)
    report = json.loads(as_json.stdout)
    exercise = report["exercises"][directory.name]
    assert 0 < exercise["percent"] < 100 and report["total"] == exercise["total"]
    assert exercise["score"] == sum(check["points"] for check in exercise["checks"].values()
                                    if check["outcome"] == "passed")
    as_text = subprocess.run(command, capture_output=True, text=True, env=env,
                             timeout=grade.RUN_TIMEOUT, check=True)
    assert as_text.stdout.splitlines()[0] == (
        f"{directory.name}: {exercise['score']}/{exercise['total']} ({exercise['percent']:g} %)")


def test_the_points_table_lists_every_check() -> None:
    table = grade.points_table()
    assert sorted(table) == NAMES, "lessons/grading.toml: one table per exercise"
    for directory in DIRS:
        assert list(table[directory.name]) == grade.check_functions(directory), (
            f"lessons/grading.toml [{directory.name}]: list every check, in file order "
            "(python tools/grade.py --sync-points)")
    assert grade.synced_points() == (ROOT / grade.POINTS).read_text(encoding="utf-8")


def test_classroom_files_are_generated_from_the_points() -> None:
    for relative, text in grade.classroom_files().items():
        path = ROOT / relative
        assert path.exists() and path.read_text(encoding="utf-8") == text, (
            f"{relative} is stale: run python tools/grade.py --autograding")
    tests = json.loads((ROOT / grade.CLASSROOM / "autograding.json").read_text("utf-8"))["tests"]
    assert [test["run"] for test in tests] == [f"make check EX={n[2:4]}" for n in NAMES]
