"""The lesson pages' in-lesson challenges run, and their answers are what the code prints.

Theory of operation
-------------------
Each lesson page (lessons/NN_name.md) has a section "In-lesson challenges":
a snippet to run, a question, and a folded answer. A student predicts, runs
the snippet and compares with the answer, so an answer that the code no
longer gives teaches the wrong thing. This file finds every challenge (a
``### `` heading, the first ```` ```python ```` block after it, and the
``<details>`` answer), runs the snippet in a subprocess with this
interpreter, and, when the answer opens with a plain code block, compares
what the snippet printed with it line by line. Answers that depend on the
machine (a number of calls, a throughput) open with prose instead, and then
only "it runs and prints something" is checked.

Where a page tells the student to run its snippets "in a notebook" (a cell of
JupyterLab), each snippet also runs there: in a fresh ``python3`` kernel
started by nbclient, one cell, with the same timeout, and must print the same
answer, write nothing on stderr (a warning, a traceback from a thread) and
raise nothing. A kernel is not a script: ipykernel already runs an asyncio
loop (``asyncio.run()`` refuses to start another, and ``asyncio.all_tasks()``
includes the kernel's own tasks, which never end) and its own threads. A
challenge that needs another line in a notebook says so in the sentence
"In a notebook, run it with `NEW` instead of `OLD`", and the kernel run makes
exactly that replacement.

Each page needs at least MIN_CHALLENGES folded answers (``<details>`` with a
summary "Answer") and the words "Predict, then check"; only challenges in the
format above are run.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LESSONS = ROOT / "lessons"
#: Challenges a lesson page must have.
MIN_CHALLENGES = 2
#: Seconds one snippet may run: the slowest waits a second or drives 2 s of load.
SNIPPET_TIMEOUT = 60

PAGES = sorted(path for path in LESSONS.glob("[0-9][0-9]_*.md"))
SECTION = re.compile(r"^## In-lesson challenges\n(.*?)(?=^## )", re.M | re.S)
CHALLENGE = re.compile(
    r"^### (?P<title>.+?)\n.*?```python\n(?P<code>.*?)```\n.*?"
    r"<details><summary>Answer</summary>\n\n(?P<answer>.*?)</details>", re.M | re.S)
PLAIN_BLOCK = re.compile(r"\A```\n(.*?)```\n", re.S)
FOLDED_ANSWER = re.compile(r"<details>\s*<summary>\s*Answer", re.I)
#: The words by which a page tells the student to run its snippets in a notebook cell.
IN_A_NOTEBOOK = re.compile(r"\bin a notebook\b", re.I)
#: A challenge's own instruction for a notebook: "run it with `NEW` instead of `OLD`".
NOTEBOOK_FORM = re.compile(
    r"in a notebook, run it with `(?P<new>[^`]+)` instead of\s+`(?P<old>[^`]+)`", re.I | re.S)


def challenges(page: pathlib.Path) -> list[tuple[str, str, str]]:
    """(title, code, answer) of every challenge on a page."""
    section = SECTION.search(page.read_text(encoding="utf-8"))
    if not section:
        return []
    return [(m["title"], m["code"], m["answer"]) for m in CHALLENGE.finditer(section.group(1))]


def notebook_form(page: pathlib.Path, title: str, code: str) -> str | None:
    """The snippet as a notebook cell runs it, or None if the page does not say
    to run it in a notebook. The instructions between a challenge's heading and
    its answer may replace one piece of the code (see NOTEBOOK_FORM)."""
    section = SECTION.search(page.read_text(encoding="utf-8"))
    if not section:
        return None
    intro = section.group(1).split("\n### ", 1)[0]
    challenge = next(m for m in CHALLENGE.finditer(section.group(1)) if m["title"] == title)
    said = challenge.group(0).split("<details>", 1)[0]
    if not (IN_A_NOTEBOOK.search(intro) or IN_A_NOTEBOOK.search(said)):
        return None
    form = NOTEBOOK_FORM.search(said)
    if form is None:
        return code
    assert code.count(form["old"]) == 1, (
        f"{page.name}, {title}: the page says to replace `{form['old']}` in a notebook, "
        f"but the snippet has it {code.count(form['old'])} times")
    return code.replace(form["old"], form["new"])


def run_in_kernel(code: str) -> tuple[str, str]:
    """Run code as one cell of a fresh python3 kernel in ROOT; return (stdout, stderr).

    Raises nbclient's CellExecutionError if the cell raises, and its
    CellTimeoutError after SNIPPET_TIMEOUT seconds; the kernel is shut down in
    every case (nbclient's execute() owns it). The client runs on an event
    loop of its own, closed at the end (nbclient's blocking ``execute()``
    would keep one open for the rest of the session), and its zmq context is
    destroyed with it.
    """
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    client = nbclient.NotebookClient(notebook, timeout=SNIPPET_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    asyncio.run(client.async_execute())
    del client
    gc.collect()  # the kernel client's zmq context is destroyed when it is collected
    streams = {"stdout": "", "stderr": ""}
    for output in notebook.cells[0].outputs:
        if output.output_type == "stream":
            streams[output.name] += output.text
    return streams["stdout"], streams["stderr"]


CASES = [(page, *challenge) for page in PAGES for challenge in challenges(page)]
IDS = [f"{page.stem}:{title.split('.')[0]}" for page, title, _, _ in CASES]
NOTEBOOK_CASES = [(page, title, form, answer) for page, title, code, answer in CASES
                  if (form := notebook_form(page, title, code)) is not None]
NOTEBOOK_IDS = [f"{page.stem}:{title.split('.')[0]}" for page, title, _, _ in NOTEBOOK_CASES]


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_every_lesson_page_has_challenges(page: pathlib.Path) -> None:
    text = page.read_text(encoding="utf-8")
    answers = len(FOLDED_ANSWER.findall(text))
    assert "predict, then check" in text.lower(), f"{page.name}: no in-lesson challenges"
    assert answers >= MIN_CHALLENGES, (
        f"{page.name}: {answers} folded answers (<details><summary>Answer</summary>); "
        f"in-lesson challenges need at least {MIN_CHALLENGES}")


@pytest.mark.timeout(SNIPPET_TIMEOUT + 30)
@pytest.mark.parametrize("page, title, code, answer", CASES,
                         ids=IDS)
def test_challenge_prints_its_answer(page: pathlib.Path, title: str, code: str,
                                     answer: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=SNIPPET_TIMEOUT, check=False)
    assert done.returncode == 0, f"{page.name}, {title}: the snippet failed\n{done.stderr}"
    check_printed(page, title, done.stdout, answer)


def check_printed(page: pathlib.Path, title: str, printed: str, answer: str) -> None:
    """The snippet printed something, and what the answer's plain block says, if it has one."""
    assert printed.strip(), f"{page.name}, {title}: the snippet printed nothing"
    expected = PLAIN_BLOCK.match(answer)
    if expected:
        assert printed.splitlines() == expected.group(1).splitlines(), (
            f"{page.name}, {title}: the answer says\n{expected.group(1)}but the code printed\n"
            f"{printed}")


@pytest.mark.timeout(SNIPPET_TIMEOUT + 60)
@pytest.mark.parametrize("page, title, code, answer", NOTEBOOK_CASES, ids=NOTEBOOK_IDS)
def test_challenge_prints_its_answer_in_a_notebook(page: pathlib.Path, title: str, code: str,
                                                   answer: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as the page says: a cell of a fresh kernel, as in JupyterLab."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's own deprecation, not ours
    stdout, stderr = run_in_kernel(code)
    assert not stderr, f"{page.name}, {title}: the cell wrote on stderr\n{stderr}"
    check_printed(page, title, stdout, answer)


# The pages' times, prerequisites and Previous/Next lines agree with the course map
# (lessons/course.toml): tools/course_map.py checks them, run by tests/test_course_map.py.
