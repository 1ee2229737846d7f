"""Write the course-map parts of the course's pages from one list: lessons/course.toml.

    python tools/course_map.py            # rewrite every generated part that is out of date
    python tools/course_map.py --check    # change nothing; exit 1 and say what drifted

Theory of operation
-------------------
The course is listed once, in ``lessons/course.toml``: its lessons in order,
each naming its notebooks and exercises, with titles, times in minutes and
prerequisites. Every other place that lists the course is made from that file
here, never typed by hand:

* README.md, ``## Course contents``: a table of lessons, notebooks, exercises
  and times, and a sentence naming the exercises;
* lessons/README.md: the counts sentence and the lessons table;
* notebooks/00_index.ipynb: the "Time needed" line and the contents table
  (markdown cells only, changed with nbformat: no code cell is touched, so the
  notebook needs no re-execution);
* lessons/instructor_notes.md: the counts sentence and the course at a glance;
* CONTRIBUTING.md: the table of lesson pages, notebooks and exercises;
* each lesson page's closing "Previous / Next" line.

A generated block sits between two HTML comments, ``<!-- course-map: NAME -->``
and ``<!-- /course-map: NAME -->``, which every renderer hides; only the text
between them is rewritten. Lines written by authors are checked instead of
written: a lesson page's "Time needed" must equal the map's minutes and the
lessons and exercises linked in its "Prerequisites" must be the map's; each
notebook's ``# NN · Title`` heading must be the map's title; and the files on
disk (notebooks, lesson pages, exercise directories) must be exactly those the
map names. ``--check`` reports each disagreement on one line, naming the file.

Adding a lesson, a notebook or an exercise is one entry each in course.toml
(see its header), then ``make course-map``.

:func:`load` and :func:`problems` are imported by tests/test_course_map.py,
and any other tool that needs the course in order (a site's table of contents)
should read :func:`load` too.
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import re
import sys
import textwrap
import tomllib

import nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAP = pathlib.Path("lessons") / "course.toml"
README = pathlib.Path("README.md")
LESSONS_README = pathlib.Path("lessons") / "README.md"
NOTES = pathlib.Path("lessons") / "instructor_notes.md"
INDEX = pathlib.Path("notebooks") / "00_index.ipynb"
CONTRIBUTING = pathlib.Path("CONTRIBUTING.md")
#: Width the generated prose is wrapped to: the project's line length.
WRAP = 100
#: A generated block: the opening comment, the text, the closing comment.
BLOCK = re.compile(r"(<!-- course-map: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /course-map: "
                   r"(?P=name) -->)", re.S)
#: The time line of notebook 00's title cell.
INDEX_TIME = re.compile(r"^\*\*Time needed:\*\*.*$", re.M)
#: A lesson page's closing navigation: the last paragraph, naming the course map.
FOOTER = re.compile(r"\n\n((?:Previous|Next):[^\n]*(?:\n[^\n]+)*)\n*\Z")
#: A lesson page's opening "Time needed ... Prerequisites ..." up to the first section.
HEADER = re.compile(r"\A(.*?)^## ", re.S | re.M)
PAGE_TIME = re.compile(r"\*\*Time needed:\*\* about (\d+ h(?: \d+ min)?|\d+ min)\.")
PAGE_PREREQUISITES = re.compile(r"\*\*Prerequisites:\*\*(.*)", re.S)
LESSON_LINK = re.compile(r"\[lesson (\d+)\]\((\d\d_[\w]+\.md)\)")
EXERCISE_LINK = re.compile(r"\[exercise (\d\d)\]\(exercises/(ex\d\d_\w+)/README\.md\)")
#: ``# 03 · UDP server``: a notebook's title heading.
NOTEBOOK_TITLE = re.compile(r"^#\s+(\d\d)\s*·\s*(.+?)\s*$", re.M)


@dataclasses.dataclass(frozen=True)
class Notebook:
    number: str
    file: str
    title: str
    short: str
    learn: str
    minutes: int


@dataclasses.dataclass(frozen=True)
class Exercise:
    number: str
    directory: str
    short: str
    topic: str
    minutes: int


@dataclasses.dataclass(frozen=True)
class Lesson:
    number: int
    page: str
    title: str
    minutes: int
    lessons_first: tuple[int, ...]
    exercises_first: tuple[str, ...]
    knowledge: str
    notebooks: tuple[Notebook, ...]
    exercises: tuple[Exercise, ...]


@dataclasses.dataclass(frozen=True)
class Course:
    lessons: tuple[Lesson, ...]
    notebooks: tuple[Notebook, ...]  # every notebook in order, 00 included
    exercises: tuple[Exercise, ...]

    @property
    def minutes(self) -> int:
        """The course's time: the lessons' times added up (notebook 00 is part of lesson 1)."""
        return sum(lesson.minutes for lesson in self.lessons)

    def lesson(self, number: int) -> Lesson:
        return next(lesson for lesson in self.lessons if lesson.number == number)


def load(root: pathlib.Path = ROOT) -> Course:
    """The course map of *root*, cross-checked.

    Raises ValueError, naming the entry, when a lesson names a notebook or an
    exercise the map does not list, when one is named by two lessons or by
    none, or when numbers are not in course order.
    """
    data = tomllib.loads((root / MAP).read_text(encoding="utf-8"))
    notebooks = tuple(Notebook(**entry) for entry in data["notebook"])
    exercises = tuple(Exercise(**entry) for entry in data["exercise"])
    by_number = {notebook.number: notebook for notebook in notebooks}
    exercise_by_number = {exercise.number: exercise for exercise in exercises}
    lessons = []
    for entry in data["lesson"]:
        unknown = [n for n in entry["notebooks"] if n not in by_number] + [
            n for n in entry["exercises"] + entry["exercises_first"]
            if n not in exercise_by_number]
        if unknown:
            raise ValueError(f"{MAP}: lesson {entry['number']} names unknown {unknown}")
        lessons.append(Lesson(
            number=entry["number"], page=entry["page"], title=entry["title"],
            minutes=entry["minutes"], lessons_first=tuple(entry["lessons_first"]),
            exercises_first=tuple(entry["exercises_first"]), knowledge=entry["knowledge"],
            notebooks=tuple(by_number[n] for n in entry["notebooks"]),
            exercises=tuple(exercise_by_number[n] for n in entry["exercises"])))
    course = Course(tuple(lessons), notebooks, exercises)
    _check_order(course)
    return course


def _check_order(course: Course) -> None:
    numbers = [lesson.number for lesson in course.lessons]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"{MAP}: lessons are numbered {numbers}, not 1, 2, 3, ...")
    for kind, listed, taught in (
            ("notebook", [n.number for n in course.notebooks[1:]],
             [n.number for lesson in course.lessons for n in lesson.notebooks]),
            ("exercise", [e.number for e in course.exercises],
             [e.number for lesson in course.lessons for e in lesson.exercises])):
        if listed != sorted(listed) or taught != listed:
            raise ValueError(f"{MAP}: the lessons take the {kind}s in the order {taught}; "
                             f"the {kind} list is {listed}: each {kind} belongs to one lesson, "
                             "in course order")
    for lesson in course.lessons:
        later = [n for n in lesson.lessons_first if n >= lesson.number]
        if later:
            raise ValueError(f"{MAP}: lesson {lesson.number} needs lesson(s) {later} first")


# ------------------------------------------------------------------ words

def duration(minutes: int) -> str:
    """``105`` -> ``"1 h 45 min"``, ``120`` -> ``"2 h"``, ``25`` -> ``"25 min"``."""
    hours, rest = divmod(minutes, 60)
    if not hours:
        return f"{rest} min"
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _wrap(text: str) -> str:
    return textwrap.fill(text, WRAP, break_long_words=False, break_on_hyphens=False)


def counts_sentence(course: Course) -> str:
    """The one sentence that states the course's size and time."""
    return (f"{len(course.lessons)} lessons, {len(course.notebooks)} notebooks (the contents "
            f"notebook 00 and {len(course.notebooks) - 1} more) and {len(course.exercises)} "
            f"exercises; the lessons' times add up to about {duration(course.minutes)} of study")


def lessons_table(course: Course) -> str:
    """lessons/README.md's table: links relative to lessons/."""
    rows = ["| # | lesson | notebooks | exercises | time | prerequisites |",
            "|---|---|---|---|---|---|"]
    for lesson in course.lessons:
        notebooks = ", ".join(f"[{n.number} {n.short}](../notebooks/{n.file})"
                              for n in lesson.notebooks)
        exercises = ", ".join(f"[{e.number} {e.short}](exercises/{e.directory}/README.md)"
                              for e in lesson.exercises)
        first = [lesson.knowledge] if lesson.knowledge else []
        first += [f"lesson {n}" for n in lesson.lessons_first]
        first += [f"exercise {n}" for n in lesson.exercises_first]
        rows.append(f"| {lesson.number} | [{lesson.title}]({lesson.page}) | {notebooks} | "
                    f"{exercises} | {duration(lesson.minutes)} | {', '.join(first)} |")
    rows.append(f"| | **total** | {len(course.notebooks) - 1} (and the contents) | "
                f"{len(course.exercises)} | **{duration(course.minutes)}** | |")
    return "\n".join(rows)


def readme_contents(course: Course) -> str:
    """README.md's course table (paths from the top of the repository) and exercises sentence."""
    rows = ["| lesson | notebooks | exercises | time |", "|---|---|---|---|",
            f"| `lessons/README.md` — the course map | `{course.notebooks[0].file}` — contents "
            "| | |"]
    for lesson in course.lessons:
        notebooks = ", ".join(f"`{n.file}`" for n in lesson.notebooks)
        exercises = ", ".join(f"`{e.directory}`" for e in lesson.exercises)
        rows.append(f"| {lesson.number} · {lesson.title} (`lessons/{lesson.page}`) | {notebooks} "
                    f"| {exercises} | {duration(lesson.minutes)} |")
    topics = [e.topic for e in course.exercises]
    sentence = _wrap(
        f"In all, {counts_sentence(course)}. The exercises (`lessons/exercises/`, in lesson "
        f"order): {', '.join(topics[:-1])}, and {topics[-1]}. Each one's checks are proven "
        "against its solution, its starter and known wrong solutions.")
    return "\n".join(rows) + "\n\n" + sentence


def index_contents(course: Course) -> str:
    """Notebook 00's contents table: links relative to notebooks/."""
    rows = ["| notebook | what you learn | lesson page | time |", "|---|---|---|---|"]
    owner = {n.number: lesson for lesson in course.lessons for n in lesson.notebooks}
    for notebook in course.notebooks:
        lesson = owner.get(notebook.number)
        page = (f"[{lesson.number} · {lesson.title}](../lessons/{lesson.page})" if lesson
                else "[course map](../lessons/README.md)")
        rows.append(f"| [{notebook.number} · {notebook.title}]({notebook.file}) | "
                    f"{notebook.learn} | {page} | {duration(notebook.minutes)} |")
    return "\n".join(rows)


def index_time(course: Course) -> str:
    return (f"**Time needed:** {duration(course.notebooks[0].minutes)} for this page; the whole "
            f"course ({len(course.lessons)} lessons) takes about {duration(course.minutes)} of "
            "study.")


def glance_table(course: Course) -> str:
    """The instructor notes' course at a glance, with the running total."""
    rows = ["| lesson | notebooks | exercises | time | running total |", "|---|---|---|---|---|"]
    total = 0
    for lesson in course.lessons:
        total += lesson.minutes
        rows.append(f"| {lesson.number} · {lesson.title} | "
                    f"{', '.join(n.number for n in lesson.notebooks)} | "
                    f"{', '.join(e.number for e in lesson.exercises)} | "
                    f"{duration(lesson.minutes)} | {duration(total)} |")
    return "\n".join(rows)


def contributing_table(course: Course) -> str:
    """CONTRIBUTING.md's table: paths from the top of the repository, names only."""
    rows = ["| lesson page | notebooks | exercises |", "|---|---|---|",
            f"| `lessons/README.md` (the course map) | `{course.notebooks[0].file}` | |"]
    for lesson in course.lessons:
        rows.append(f"| `lessons/{lesson.page}` | "
                    f"{', '.join(f'`{n.file}`' for n in lesson.notebooks)} | "
                    f"{', '.join(f'`{e.directory}`' for e in lesson.exercises)} |")
    return "\n".join(rows)


def footer(course: Course, lesson: Lesson) -> str:
    """A lesson page's closing line: previous and next lesson, and the course map."""
    parts = []
    position = course.lessons.index(lesson)
    if position > 0:
        before = course.lessons[position - 1]
        parts.append(f"Previous: [lesson {before.number} · {before.title}]({before.page}).")
    if position + 1 < len(course.lessons):
        after = course.lessons[position + 1]
        parts.append(f"Next: [lesson {after.number} · {after.title}]({after.page}).")
    else:
        parts.append("This is the last lesson.")
    parts.append("Back to the [course map](README.md).")
    return _wrap(" ".join(parts))


# ------------------------------------------------------------------ blocks

def blocks_of(course: Course) -> dict[pathlib.Path, dict[str, str]]:
    """Every generated block: file -> block name -> text."""
    return {
        README: {"contents": readme_contents(course)},
        LESSONS_README: {"counts": _wrap(f"{counts_sentence(course)[0].upper()}"
                                         f"{counts_sentence(course)[1:]}."),
                         "lessons": lessons_table(course)},
        NOTES: {"counts": _wrap(f"The course: {counts_sentence(course)}."),
                "glance": glance_table(course)},
        INDEX: {"contents": index_contents(course)},
        CONTRIBUTING: {"contributing": contributing_table(course)},
    }


def fill(text: str, blocks: dict[str, str], where: str) -> tuple[str, list[str]]:
    """*text* with its generated blocks rewritten, and the problems found."""
    found = {match["name"] for match in BLOCK.finditer(text)}
    missing = sorted(set(blocks) - found)
    problems = [f"{where}: no generated block '{name}' (add the two comments "
                f"<!-- course-map: {name} --> and <!-- /course-map: {name} -->)"
                for name in missing]

    def replace(match: re.Match[str]) -> str:
        body = blocks.get(match["name"])
        if body is None:
            return match.group(0)
        return f"{match.group(1)}{body}\n{match.group(4)}"

    return BLOCK.sub(replace, text), problems


def _notebook_texts(course: Course, root: pathlib.Path) -> tuple[nbformat.NotebookNode,
                                                                 list[str], bool]:
    """Notebook 00 with its generated parts rewritten, the problems, and whether it changed."""
    notebook = nbformat.read(root / INDEX, as_version=4)
    blocks = blocks_of(course)[INDEX]
    problems: list[str] = []
    changed = False
    seen: set[str] = set()
    time_line = False
    for cell in notebook.cells:
        if cell.cell_type != "markdown":
            continue
        seen |= {match["name"] for match in BLOCK.finditer(cell.source)}
        new, _ = fill(cell.source, blocks, str(INDEX))
        if NOTEBOOK_TITLE.search(new) and INDEX_TIME.search(new):
            time_line = True
            new = INDEX_TIME.sub(index_time(course).replace("\\", "\\\\"), new, count=1)
        if new != cell.source:
            cell.source = new
            changed = True
    problems += [f"{INDEX}: no generated block '{name}'" for name in sorted(set(blocks) - seen)]
    if not time_line:
        problems.append(f"{INDEX}: the title cell has no '**Time needed:**' line")
    return notebook, problems, changed


def _page_problems(course: Course, root: pathlib.Path, lesson: Lesson) -> list[str]:
    """What a lesson page's author-written opening says that the map does not."""
    path = root / "lessons" / lesson.page
    header = HEADER.match(path.read_text(encoding="utf-8"))
    where = f"lessons/{lesson.page}"
    if not header:
        return [f"{where}: no '## ' section after the opening lines"]
    opening = " ".join(header.group(1).split())
    problems = []
    time = PAGE_TIME.search(opening)
    if not time or time.group(1) != duration(lesson.minutes):
        problems.append(f"{where}: says time needed {time.group(1) if time else 'nothing'!r}; "
                        f"the map says about {duration(lesson.minutes)}")
    prerequisites = PAGE_PREREQUISITES.search(opening)
    text = prerequisites.group(1) if prerequisites else ""
    linked = sorted({int(m.group(1)) for m in LESSON_LINK.finditer(text)})
    if linked != sorted(lesson.lessons_first):
        problems.append(f"{where}: its prerequisites link lessons {linked}; the map says "
                        f"{sorted(lesson.lessons_first)}")
    exercises = sorted({m.group(1) for m in EXERCISE_LINK.finditer(text)})
    if exercises != sorted(lesson.exercises_first):
        problems.append(f"{where}: its prerequisites link exercises {exercises}; the map says "
                        f"{sorted(lesson.exercises_first)}")
    return problems


def _disk_problems(course: Course, root: pathlib.Path) -> list[str]:
    problems = []
    for kind, on_disk, in_map in (
            ("notebook", {p.name for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb")},
             {n.file for n in course.notebooks}),
            ("lesson page", {p.name for p in (root / "lessons").glob("[0-9][0-9]_*.md")},
             {lesson.page for lesson in course.lessons}),
            ("exercise", {p.parent.name for p in
                          (root / "lessons" / "exercises").glob("ex[0-9][0-9]_*/README.md")},
             {e.directory for e in course.exercises})):
        for name in sorted(on_disk - in_map):
            problems.append(f"{MAP}: the {kind} {name} exists but the map does not list it")
        for name in sorted(in_map - on_disk):
            problems.append(f"{MAP}: lists the {kind} {name}, which does not exist")
    for notebook in course.notebooks:
        path = root / "notebooks" / notebook.file
        if not path.exists():
            continue
        headings = [NOTEBOOK_TITLE.search(cell.source) for cell in
                    nbformat.read(path, as_version=4).cells if cell.cell_type == "markdown"]
        title = next((m for m in headings if m), None)
        if title is None or (title.group(1), title.group(2)) != (notebook.number, notebook.title):
            problems.append(f"notebooks/{notebook.file}: its heading is "
                            f"{title.group(0) if title else None!r}; the map says "
                            f"'# {notebook.number} · {notebook.title}'")
    return problems


def problems(root: pathlib.Path = ROOT, *, write: bool = False) -> list[str]:
    """Every disagreement between the course map of *root* and its pages.

    With *write*, rewrite the generated parts (files that exist only) and
    report only what writing cannot fix (missing blocks, author-written lines,
    files on disk). A map that does not load is one problem, its message.
    """
    try:
        course = load(root)
    except (ValueError, KeyError, TypeError) as error:
        return [f"{MAP}: {error}"]
    found: list[str] = []
    found += _disk_problems(course, root)
    generated: dict[pathlib.Path, str] = {}
    for relative, blocks in blocks_of(course).items():
        if relative == INDEX:
            continue
        text = (root / relative).read_text(encoding="utf-8")
        new, missing = fill(text, blocks, str(relative))
        found += missing
        if new != text:
            generated[relative] = new
    for lesson in course.lessons:
        relative = pathlib.Path("lessons") / lesson.page
        path = root / relative
        if not path.exists():
            continue
        found += _page_problems(course, root, lesson)
        text = path.read_text(encoding="utf-8")
        match = FOOTER.search(text)
        if not match:
            found.append(f"{relative}: no closing 'Previous: ... / Next: ...' paragraph")
            continue
        new = text[:match.start(1)] + footer(course, lesson) + "\n"
        if new != text:
            generated[relative] = new
    notebook, index_problems, index_changed = _notebook_texts(course, root)
    found += index_problems
    if write:
        for relative, text in generated.items():
            (root / relative).write_text(text, encoding="utf-8")
            print(f"course map: rewrote {relative}")
        if index_changed:
            nbformat.write(notebook, root / INDEX)
            print(f"course map: rewrote {INDEX}")
    else:
        found += [f"{relative}: its generated part is out of date" for relative in generated]
        if index_changed:
            found.append(f"{INDEX}: its generated part is out of date")
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if anything disagrees with the map")
    parser.add_argument("--root", type=pathlib.Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    found = problems(args.root, write=not args.check)
    for problem in found:
        print(problem, file=sys.stderr)
    if found:
        print(f"course map: {len(found)} problem(s)"
              + ("; run `make course-map`" if args.check else ""), file=sys.stderr)
        return 1
    course = load(args.root)
    print(f"course map: {counts_sentence(course)}; everything agrees")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
