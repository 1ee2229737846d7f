"""Helpers for the notebooks: show netserv's own source, draw its class map.

Not part of the server code: nothing in netserv's core imports this module.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["source", "show_source"]


def source(obj: Any) -> str:
    """The source text of a netserv class, function or method, as it is on disk."""
    return inspect.getsource(obj)


def show_source(obj: Any) -> Any:
    """Display the source of ``obj`` with syntax highlighting in a notebook.

    Returns an IPython display object (so that it shows as a cell's result),
    or the plain text when IPython is not available.
    """
    text = source(obj)
    try:
        from IPython.display import Code
    except ImportError:  # pragma: no cover - outside Jupyter
        return text
    return Code(text, language="python")
