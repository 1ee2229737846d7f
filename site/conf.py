"""Sphinx configuration of the course website (``make site``).

The source folder is the repository itself (``sphinx-build -c site . build/site``), so that the
pages keep the relative links they have in the repository: a lesson's link to
``../notebooks/01_base_server.ipynb`` works in JupyterLab, on a code host and on the site alike.
Only the course's own pages are read (``include_patterns``); notebooks are shown with their
committed outputs and never executed here (nbval executes them in ``make test``).
"""

from __future__ import annotations

import pathlib
import sys

SITE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(SITE))

project = "netserv"
author = "the netserv authors"
copyright = "the netserv authors; code MIT, course text CC BY 4.0"

extensions = ["myst_nb", "course_toc", "glossary_links", "launch"]

root_doc = "site/index"
include_patterns = [
    "site/*.md",
    "README.md",
    "lessons/*.md",
    "lessons/exercises/*/README.md",
    "notebooks/[0-9][0-9]_*.ipynb",
    "docs/differences.md",
    "docs/setup.md",
    "benchmarks/README.md",
]
exclude_patterns = [".venv*", "build", "**/.ipynb_checkpoints"]

# Committed outputs only: the notebooks are proven by nbval, the site shows what they printed.
nb_execution_mode = "off"
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
suppress_warnings: list[str] = []

html_theme = "sphinx_book_theme"
html_title = "netserv: how network servers work"
html_static_path = ["_static"]
html_css_files = ["netserv.css"]
# A page without an icon makes the browser ask for /favicon.ico, a 404 in its console.
html_favicon = "_static/favicon.svg"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "navigation_with_keys": False,
}
# The theme logs a console error when the page names no colour mode: name one.
html_context = {"default_mode": "light"}
html_show_sourcelink = False
html_copy_source = True


def _redirect_root(app, exception):  # type: ignore[no-untyped-def]
    """The site's address opens the front page (site/index.html)."""
    if exception is None and app.builder.format == "html":
        target = pathlib.Path(app.outdir) / "index.html"
        target.write_text('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
                          '<title>netserv</title>'
                          '<meta http-equiv="refresh" content="0; url=site/index.html">'
                          '</head><body><a href="site/index.html">netserv: the course</a>'
                          '</body></html>\n', encoding="utf-8")


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("build-finished", _redirect_root)
