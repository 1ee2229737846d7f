"""The site's table of contents, made from the course map (lessons/course.toml).

Theory of operation
-------------------
The course's order is written once, in ``lessons/course.toml``, and read by
``tools/course_map.py``. This extension replaces the line ``{course-toc}`` of the
site's front page, as Sphinx reads it, with one toctree per lesson (the lesson
page, its notebooks, its exercises' READMEs, in the map's order) between a
"Start" and a "Reference" toctree. Sphinx's previous/next links follow the
toctrees, so they walk the course in the map's order; nothing here keeps a copy.
"""

from __future__ import annotations

import pathlib
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
PLACEHOLDER = "{course-toc}"

#: Pages read before lesson 1, and after lesson 9: (docname, caption) pairs.
START = ["README", "docs/setup", "notebooks/00_index"]
REFERENCE = ["site/glossary", "docs/differences", "benchmarks/README", "lessons/README",
             "lessons/instructor_notes"]


def _toctree(caption: str, docnames: list[str]) -> str:
    entries = "\n".join(f"/{name}" for name in docnames)
    return f"```{{toctree}}\n:caption: {caption}\n:maxdepth: 1\n\n{entries}\n```\n"


def course_toc() -> str:
    """The toctrees of the front page, in the course map's order."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import course_map
    finally:
        sys.path.pop(0)
    course = course_map.load(ROOT)
    start = [name for name in START if (ROOT / name).with_suffix(".md").exists()
             or (ROOT / name).with_suffix(".ipynb").exists()]
    parts = [_toctree("Start", start)]
    for lesson in course.lessons:
        names = [f"lessons/{pathlib.Path(lesson.page).stem}"]
        names += [f"notebooks/{pathlib.Path(nb.file).stem}" for nb in lesson.notebooks]
        names += [f"lessons/exercises/{ex.directory}/README" for ex in lesson.exercises]
        parts.append(_toctree(f"Lesson {lesson.number} · {lesson.title}", names))
    parts.append(_toctree("Reference", REFERENCE))
    return "\n".join(parts)


def _fill(app: Any, docname: str, source: list[str]) -> None:
    if docname == app.config.root_doc and PLACEHOLDER in source[0]:
        source[0] = source[0].replace(PLACEHOLDER, course_toc())


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
