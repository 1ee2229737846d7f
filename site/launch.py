"""A "run this notebook" box at the top of every notebook page of the site.

Theory of operation
-------------------
A reader of the site sees a notebook's committed outputs; to run it they need it on their own
machine or in a hosted JupyterLab. After Sphinx reads a notebook, a note is put after its
navigation line with the three ways: the course's own command (``make lab``, which opens
JupyterLab on the course), the notebook's file to download (the theme's download button gives the
same ``.ipynb``), and Binder when the site is built for a public repository
(``make site REPOSITORY_URL=...``; the publishing workflow passes its own repository's address).
Nothing here names a host: without a repository address there is no Binder link.
"""

from __future__ import annotations

import os
import pathlib
from typing import Any

from docutils import nodes

#: Binder's public service; used only when a repository address is given.
BINDER = "https://mybinder.org/v2/"
BRANCH = os.environ.get("REPOSITORY_BRANCH", "main")


def _binder_url(repository: str, docname: str) -> str | None:
    prefix = "https://github.com/"
    if not repository.startswith(prefix):
        return None
    slug = repository.removeprefix(prefix).rstrip("/")
    return f"{BINDER}gh/{slug}/{BRANCH}?urlpath=lab/tree/{docname}.ipynb"


def add_launch_box(app: Any, doctree: nodes.document) -> None:
    docname = app.env.current_document.docname
    if not docname.startswith("notebooks/"):
        return
    filename = pathlib.PurePosixPath(docname).name + ".ipynb"
    note = nodes.admonition(classes=["note", "launch"])
    note += nodes.title(text="Run this notebook")
    items = nodes.bullet_list()

    local = nodes.paragraph()
    local += nodes.Text("On your machine, from the top of the repository: ")
    local += nodes.literal(text="make lab")
    local += nodes.Text(f" (sets everything up and opens JupyterLab), then open {docname}.ipynb.")
    items += nodes.list_item("", local)

    download = nodes.paragraph()
    download += nodes.Text("Or download the notebook: ")
    source = f"../_sources/{docname}.ipynb"
    download += nodes.reference("", filename, refuri=source, internal=False)
    download += nodes.Text(" (it needs netserv installed: pip install -e . in a copy of the "
                           "repository).")
    items += nodes.list_item("", download)

    binder = _binder_url(app.config.netserv_repository_url, docname)
    if binder:
        hosted = nodes.paragraph()
        hosted += nodes.Text("Or run it in your browser, with nothing installed: ")
        hosted += nodes.reference("", "launch on Binder", refuri=binder)
        hosted += nodes.Text(" (a free public service; starting takes a few minutes).")
        items += nodes.list_item("", hosted)
    note += items

    # After the title: the notebook's first section holds the navigation line and the title.
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, note)
        return
    title = next(iter(section.findall(nodes.title)))
    section.insert(section.index(title) + 1, note)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("netserv_repository_url", os.environ.get("REPOSITORY_URL", ""), "env")
    app.connect("doctree-read", add_launch_box)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
