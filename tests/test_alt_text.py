"""Every figure of the course has alt text: tools/alt_text.py's rules, applied.

Theory of operation
-------------------
A figure in a notebook is an ``image/png`` output of a code cell; its alt text
is the cell's ``metadata["mystnb"]["image"]["alt"]``, which the site's builder
puts on the image and JupyterLab shows in the cell's metadata. This file reads
the committed notebooks (running nothing) and fails, naming the notebook and
the cell, on a figure cell whose text is missing, shorter than a sentence, or a
placeholder, and on two cells that share a text. Markdown images (lessons/,
docs/, benchmarks/README.md) must have alt text of a few words.

The rules are imported from tools/alt_text.py, the tool that writes the texts,
so the test and the tool cannot disagree. Whether a text is *true* of its
figure no test can tell: a person writes it looking at the figure.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import shutil
from types import ModuleType

import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_tool(name: str) -> ModuleType:
    """Import tools/<name>.py by path (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"netserv_tools_{name}",
                                                  ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


alt = load_tool("alt_text")
PATHS = alt.notebook_paths()
GOOD = ("Two bars of the median round trip in microseconds, TCP against a Unix socket; "
        "the Unix socket's bar is the shorter.")


def read(path: pathlib.Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
def test_every_figure_has_alt_text(path: pathlib.Path) -> None:
    wanting = [f"cell {index} (id {cell.get('id')}): {'; '.join(alt.problems(alt.alt_text(cell)))}"
               for index, cell in alt.figure_cells(read(path))
               if alt.problems(alt.alt_text(cell))]
    assert not wanting, (f"{path.name}: figures without acceptable alt text "
                         f"(set them with tools/alt_text.py): {wanting}")


def test_no_two_figures_share_alt_text() -> None:
    seen: dict[str, str] = {}
    shared = []
    for path in PATHS:
        for index, cell in alt.figure_cells(read(path)):
            text = alt.alt_text(cell)
            if not text:
                continue  # reported by test_every_figure_has_alt_text
            where = f"{path.name} cell {index}"
            key = " ".join(text.split()).casefold()
            if key in seen:
                shared.append(f"{seen[key]} and {where}")
            seen.setdefault(key, where)
    assert not shared, f"figures with the same alt text: {shared}"


def test_markdown_images_have_alt_text() -> None:
    images = list(alt.markdown_images())
    wanting = [f"{path.relative_to(ROOT)}:{line} {target}: "
               f"{'; '.join(alt.problems(text, min_words=alt.MIN_MARKDOWN_WORDS, sentence=False))}"
               for path, line, text, target in images
               if alt.problems(text, min_words=alt.MIN_MARKDOWN_WORDS, sentence=False)]
    assert not wanting, f"Markdown images without acceptable alt text: {wanting}"


# ---- the rules themselves: each must be able to fail


@pytest.mark.parametrize("text", [None, "", "   ", "Figure 3.", "A plot.", "The figure below.",
                                  "<Figure size 800x600 with 1 Axes>",
                                  "Latency grows with the load.",  # 5 words: names no axis
                                  GOOD.rstrip("."),                # not a sentence
                                  "Plot 2 of the run, as described in the text above here."])
def test_rules_reject(text: str | None) -> None:
    assert alt.problems(text)


def test_rules_accept_a_description() -> None:
    assert alt.problems(GOOD) == []


def test_markdown_image_pattern(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("text ![](a.png) and ![latency against offered load](b.png \"title\")\n"
                    "[a link](c.md) is no image\n", encoding="utf-8")
    assert list(alt.markdown_images([tmp_path])) == [
        (page, 1, "", "a.png"), (page, 1, "latency against offered load", "b.png")]


# ---- the tool: it changes the alt text and nothing else


def figure_notebook(tmp_path: pathlib.Path) -> tuple[pathlib.Path, int]:
    """A copy of the first course notebook with a figure, and that cell's index."""
    for path in PATHS:
        cells = list(alt.figure_cells(read(path)))
        if cells:
            copy = tmp_path / path.name
            shutil.copyfile(path, copy)
            return copy, cells[0][0]
    pytest.skip("no notebook draws a figure")


def test_apply_changes_only_the_alt_text(tmp_path: pathlib.Path) -> None:
    path, index = figure_notebook(tmp_path)
    before = json.loads(path.read_text(encoding="utf-8"))
    assert alt.apply({str(path): {str(index): GOOD}}) == []
    after = json.loads(path.read_text(encoding="utf-8"))
    assert after != before
    metadata = before["cells"][index]["metadata"]
    metadata.setdefault("mystnb", {}).setdefault("image", {})["alt"] = GOOD
    assert after == before


def test_apply_refuses_bad_text_and_writes_nothing(tmp_path: pathlib.Path) -> None:
    path, index = figure_notebook(tmp_path)
    before = path.read_bytes()
    text_only = next(i for i, cell in enumerate(read(path).cells) if not alt.figure_count(cell))
    errors = alt.apply({str(path): {str(index): GOOD, str(text_only): GOOD}})
    assert errors and "draws no figure" in errors[0]
    assert alt.apply({str(path): {str(index): "Figure 3."}})
    assert alt.apply({str(path): {"no-such-cell": GOOD}})
    assert path.read_bytes() == before
