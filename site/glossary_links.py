"""Link the first use of each glossary term on a page to its definition.

Theory of operation
-------------------
The glossary (site/glossary.md) is the only place a term is defined. The lessons, notebooks and
exercise READMEs stay plain Markdown and notebooks that read the same in JupyterLab, on a code
host and on the site, so they carry no markup for terms: the links are added here, when the site
is built. After Sphinx has resolved a page, every text node outside code, links, headings and the
glossary itself is searched for the terms (whole words, any case, a plural ``s`` allowed), and
the first use of each term on that page becomes a link to its entry.

Rules (each breaks the build, which runs with warnings as errors):

* a term defined in the glossary and used on no other page is a warning: a glossary entry
  nobody needs is a sign that a page was renamed or a term reworded;
* a ``{term}`` reference to a term the glossary does not define is Sphinx's own warning.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
#: The typographic apostrophe docutils puts in prose for '.
APOSTROPHE = "\u2019"
GLOSSARY_DOC = "site/glossary"

#: Nodes whose text is never linked: code, existing links, headings, the glossary's own terms,
#: raw HTML (notebook outputs), and images' captions.
SKIP = (nodes.literal, nodes.literal_block, nodes.reference, nodes.title, nodes.term,
        nodes.raw, nodes.FixedTextElement, addnodes.glossary, addnodes.pending_xref,
        nodes.caption, nodes.rubric, nodes.target)


def _terms(env: Any) -> dict[str, tuple[str, str]]:
    """Every glossary term, lower-cased: (docname, anchor), from the standard domain."""
    std = env.get_domain("std")
    return {name.lower(): (entry[0], entry[1])
            for (kind, name), entry in std.objects.items() if kind == "term"}


def _pattern(terms: list[str]) -> re.Pattern[str]:
    # Longest first, so that "accept queue" wins over a shorter term inside it.
    # Docutils turns ' into a typographic apostrophe in prose: match either.
    alternatives = "|".join(re.escape(term).replace("'", f"['{APOSTROPHE}]")
                            for term in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives})(?:s|es)?(?![\w-])", re.IGNORECASE)


def _skipped(node: nodes.Node) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, SKIP):
            return True
        parent = parent.parent
    return False


def link_terms(app: Any, doctree: nodes.document, docname: str) -> None:
    """Turn the first use of each term on *docname* into a link to the glossary."""
    if docname == GLOSSARY_DOC:
        return
    terms = _terms(app.env)
    if not terms:
        return
    pattern = _pattern(list(terms))
    linked: set[str] = set()
    used: set[str] = app.env.glossary_used  # type: ignore[attr-defined]
    for text in list(doctree.findall(nodes.Text)):
        value = str(text)
        if _skipped(text):
            # A term in code counts as used (EMFILE, TCP_NODELAY), but is not linked.
            used.update(match.group(1).lower().replace(APOSTROPHE, "'")
                        for match in pattern.finditer(value))
            continue
        pieces: list[nodes.Node] = []
        position = 0
        for match in pattern.finditer(value):
            term = match.group(1).lower().replace(APOSTROPHE, "'")
            used.add(term)
            if term in linked:
                continue
            linked.add(term)
            doc, anchor = terms[term]
            uri = app.builder.get_relative_uri(docname, doc) + "#" + anchor
            pieces.append(nodes.Text(value[position:match.start()]))
            reference = nodes.reference("", "", internal=True, refuri=uri,
                                        reftitle=f"glossary: {match.group(1)}",
                                        classes=["glossary-link"])
            reference += nodes.Text(match.group(0))
            pieces.append(reference)
            position = match.end()
        if pieces:
            pieces.append(nodes.Text(value[position:]))
            text.parent.replace(text, pieces)


def _start(app: Any, env: Any, docnames: list[str]) -> None:
    env.glossary_used = set()


def check_used(app: Any, exception: BaseException | None) -> None:
    """Warn about a glossary term that no page uses."""
    if exception is not None or app.builder.format != "html":
        return
    unused = sorted(set(_terms(app.env)) - app.env.glossary_used)
    for term in unused:
        LOGGER.warning("glossary term %r is used on no page of the course", term,
                       location=GLOSSARY_DOC, type="netserv", subtype="glossary")


def setup(app: Any) -> dict[str, Any]:
    app.connect("env-before-read-docs", _start)
    app.connect("doctree-resolved", link_terms)
    app.connect("build-finished", check_used)
    return {"parallel_read_safe": True, "parallel_write_safe": False}
