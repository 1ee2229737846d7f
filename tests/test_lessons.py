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

Each page needs at least MIN_CHALLENGES folded answers (``<details>`` with a
summary "Answer") and the words "Predict, then check"; only challenges in the
format above are run.
"""

from __future__ import annotations

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


def challenges(page: pathlib.Path) -> list[tuple[str, str, str]]:
    """(title, code, answer) of every challenge on a page."""
    section = SECTION.search(page.read_text(encoding="utf-8"))
    if not section:
        return []
    return [(m["title"], m["code"], m["answer"]) for m in CHALLENGE.finditer(section.group(1))]


CASES = [(page, *challenge) for page in PAGES for challenge in challenges(page)]


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
                         ids=[f"{page.stem}:{title.split('.')[0]}" for page, title, _, _ in CASES])
def test_challenge_prints_its_answer(page: pathlib.Path, title: str, code: str,
                                     answer: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=SNIPPET_TIMEOUT, check=False)
    assert done.returncode == 0, f"{page.name}, {title}: the snippet failed\n{done.stderr}"
    assert done.stdout.strip(), f"{page.name}, {title}: the snippet printed nothing"
    expected = PLAIN_BLOCK.match(answer)
    if expected:
        assert done.stdout.splitlines() == expected.group(1).splitlines(), (
            f"{page.name}, {title}: the answer says\n{expected.group(1)}but the code printed\n"
            f"{done.stdout}")
