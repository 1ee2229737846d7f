"""The pages that list the course agree with the course map, lessons/course.toml.

Theory of operation
-------------------
tools/course_map.py generates the course-map parts of README.md,
lessons/README.md, notebook 00 and the instructor notes, and checks what
authors write by hand (a lesson page's time and prerequisites, a notebook's
title). The first test runs its check on the repository. The others prove the
check can fail: each copies the pages into a temporary folder, changes one
thing (a time, the order, a prerequisite, a page's table) and expects the
check to name the file that drifted. The schedules of the instructor notes are
prose, so a last test reads them: the three-day and the semester schedules
must name every lesson and every exercise of the map.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re
import shutil
import sys
from typing import Any

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_tool() -> Any:
    """tools/course_map.py, imported by path (tools/ is not a package)."""
    name = "netserv_tools_course_map"
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / "course_map.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


course_map = load_tool()


def test_every_page_agrees_with_the_course_map() -> None:
    assert course_map.problems(ROOT) == [], "run `make course-map`"


@pytest.fixture
def copy(tmp_path: pathlib.Path) -> pathlib.Path:
    """The pages the map touches, copied (exercise folders: their README only)."""
    shutil.copy(ROOT / "README.md", tmp_path)
    shutil.copy(ROOT / "CONTRIBUTING.md", tmp_path)
    (tmp_path / "lessons" / "exercises").mkdir(parents=True)
    for path in (ROOT / "lessons").glob("*.*"):
        shutil.copy(path, tmp_path / "lessons")
    for readme in (ROOT / "lessons" / "exercises").glob("ex*/README.md"):
        (tmp_path / "lessons" / "exercises" / readme.parent.name).mkdir()
        shutil.copy(readme, tmp_path / "lessons" / "exercises" / readme.parent.name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks",
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    assert course_map.problems(tmp_path) == []
    return tmp_path


def edit(path: pathlib.Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_changed_time_is_seen_everywhere_it_is_written(copy: pathlib.Path) -> None:
    edit(copy / "lessons" / "course.toml", "minutes = 120\nlessons_first = [2]",
         "minutes = 125\nlessons_first = [2]")
    found = "\n".join(course_map.problems(copy))
    for page in ("README.md", "lessons/README.md", "lessons/instructor_notes.md",
                 "notebooks/00_index.ipynb", "lessons/03_handlers_and_lifecycle.md: says time"):
        assert page in found, f"{page} not reported:\n{found}"


def test_rewriting_fixes_what_the_map_generates(copy: pathlib.Path) -> None:
    edit(copy / "lessons" / "README.md", "| 2 h 30 min |", "| 2 h 20 min |")
    assert course_map.problems(copy) == [
        "lessons/README.md: its generated part is out of date"]
    assert course_map.problems(copy, write=True) == []
    assert course_map.problems(copy) == []


def test_a_count_changed_by_hand_is_seen(copy: pathlib.Path) -> None:
    edit(copy / "lessons" / "instructor_notes.md", "9 lessons", "8 lessons")
    assert course_map.problems(copy) == [
        "lessons/instructor_notes.md: its generated part is out of date"]


def test_exercises_out_of_order_are_refused(copy: pathlib.Path) -> None:
    edit(copy / "lessons" / "course.toml", 'exercises = ["05", "06"]', 'exercises = ["06", "05"]')
    found = course_map.problems(copy)
    assert len(found) == 1 and "in the order" in found[0], found


def test_a_prerequisite_the_page_does_not_link_is_seen(copy: pathlib.Path) -> None:
    edit(copy / "lessons" / "course.toml", "lessons_first = [5, 6]", "lessons_first = [4, 5, 6]")
    found = course_map.problems(copy)
    assert any(line.startswith("lessons/09_asyncio.md: its prerequisites link lessons [5, 6]")
               for line in found), found


def test_a_notebook_missing_from_the_map_is_seen(copy: pathlib.Path) -> None:
    shutil.copy(copy / "notebooks" / "01_base_server.ipynb", copy / "notebooks" / "99_extra.ipynb")
    assert ("lessons/course.toml: the notebook 99_extra.ipynb exists but the map does not list it"
            in course_map.problems(copy))


def test_a_missing_block_is_named(copy: pathlib.Path) -> None:
    edit(copy / "README.md", "<!-- course-map: contents -->", "")
    found = course_map.problems(copy)
    assert any("README.md: no generated block 'contents'" in line for line in found), found


def schedule(title: str) -> str:
    notes = (ROOT / "lessons" / "instructor_notes.md").read_text(encoding="utf-8")
    found = re.search(rf"^### {re.escape(title)}.*?$(.*?)(?=^#)", notes, re.M | re.S)
    assert found, f"the instructor notes have no schedule '### {title}'"
    return found.group(1)


@pytest.mark.parametrize("title", ["Three days", "A semester"])
def test_schedules_cover_every_lesson_and_exercise(title: str) -> None:
    text = schedule(title).lower()
    course = course_map.load(ROOT)
    lessons = {int(n) for n in re.findall(r"\blesson (\d+)\b", text)}
    exercises = set(re.findall(r"\bexercises? (\d\d)\b", text))
    missing_lessons = sorted({lesson.number for lesson in course.lessons} - lessons)
    missing_exercises = sorted({e.number for e in course.exercises} - exercises)
    assert not missing_lessons and not missing_exercises, (
        f"the {title} schedule leaves out lessons {missing_lessons}, "
        f"exercises {missing_exercises}")
