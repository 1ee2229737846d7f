"""Numeric settings: each declared once with its range, checked in one place.

Theory of operation
-------------------
Servers and handlers are configured by class attributes (``timeout``,
``request_queue_size``, ``pool_size``, ``idle_timeout``...), which a
subclass or an instance may change. A value out of range rarely fails where
it is set: ``idle_timeout = 0`` makes the event loop spin, ``max_children =
0`` hangs after the first request, ``pool_size = 10**6`` fails on the first
request. So every class that has numeric settings declares them, with their
ranges, in a tuple of :class:`Setting` named ``numeric_settings`` in its own
body, and :func:`check_settings` checks every one a server has, and every
one its handler class has, with a message that names the setting, the
allowed range and the value:

    ValueError: EventDrivenTCPServer.idle_timeout must be None (never) or
    finite seconds > 0 (0 or less makes the loop scan its table without
    waiting: a core at 100 %), got 0

BaseServer calls it at construction (before anything is bound) and when a
loop starts (serve_forever(), handle_request()), since a setting may be
changed on the instance in between. :func:`settings_table` lists them all.

A setting is a whole number (``integer``; bool is refused, as for the pool)
or a real number (int or float, never NaN, and finite unless it has an
upper bound: None is how a setting says "no limit"); ``none`` says what
None means when None is allowed. Bounds are inclusive unless ``above`` (strictly
greater). What this does NOT do: check a handler attribute set on the
handler instance (in its own setup()), or any value not declared here.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["MAX_BUFFER_SIZE", "Setting", "check_settings", "declared_settings", "settings_table"]

#: Largest buffer a setting may ask for (recv size, datagram size, a
#: handler's file buffers): 16 MiB, more than any socket buffer holds (Linux
#: caps them at a few MiB by default), while recv(), recvfrom() and a
#: BufferedReader allocate the whole size up front, per call or per request.
MAX_BUFFER_SIZE = 1 << 24


@dataclasses.dataclass(frozen=True)
class Setting:
    """One numeric setting: its name, its range, and why the range is what it is.

    ``low`` is the smallest value (or, with ``above``, the value it must
    exceed); ``high`` the largest (None: no upper bound but a finite value);
    ``none`` is what None means, if None is allowed (empty: None refused);
    ``why`` names the fault a value outside the range causes.
    """

    name: str
    low: float
    high: float | None = None
    integer: bool = False
    above: bool = False
    none: str = ""
    why: str = ""
    unit: str = ""  # what a real number counts ("seconds"), for the message

    @staticmethod
    def _number(value: float) -> str:
        return str(int(value)) if float(value).is_integer() else f"{value:g}"

    def describe(self) -> str:
        """The allowed range in words: ``an int from 1 to 10000``, ``seconds > 0``."""
        kind = "an int" if self.integer else (self.unit or "a number")
        if not self.integer and self.high is None:
            kind = f"finite {self.unit or 'number'}"  # infinity is what None says
        low = self._number(self.low)
        if self.above:
            text = f"{kind} > {low}"
        elif self.high is None:
            text = f"{kind} >= {low}"
        else:
            text = f"{kind} from {low} to {self._number(self.high)}"
        if self.above and self.high is not None:
            text += f" and <= {self._number(self.high)}"
        return f"None ({self.none}) or {text}" if self.none else text

    def check(self, owner: str, value: Any, subject: str = "") -> None:
        """Raise TypeError (wrong type) or ValueError (out of range) naming
        ``owner.name`` (or ``subject``), the allowed range and the value."""
        if value is None and self.none:
            return
        where = f"{subject or f'{owner}.{self.name}'} must be {self.describe()}"
        reason = f" ({self.why})" if self.why else ""
        kinds = int if self.integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise TypeError(f"{where}, got {type(value).__name__} {value!r}")
        if (math.isnan(value) or (self.high is None and math.isinf(value))
                or (value <= self.low if self.above else value < self.low)
                or (self.high is not None and value > self.high)):
            raise ValueError(f"{where}{reason}, got {value!r}")


@functools.cache
def declared_settings(cls: type) -> tuple[Setting, ...]:
    """Every Setting that ``cls`` and its bases declare (``numeric_settings`` in
    a class body); a subclass's declaration of a name replaces its base's."""
    found: dict[str, Setting] = {}
    for klass in reversed(cls.__mro__):
        for setting in vars(klass).get("numeric_settings", ()):
            found[setting.name] = setting
    return tuple(found.values())


def check_settings(obj: Any, *others: Any) -> None:
    """Check every declared setting of ``obj`` and of each of ``others``.

    Each may be an instance (its own values are read) or a class; others
    that are not classes or instances of one with settings (a handler
    factory function) are skipped, and so is a setting a class computes (a
    property: its value exists only on an instance). Raises at the first
    value out of range.
    """
    for target in (obj, *others):
        cls = target if isinstance(target, type) else type(target)
        for setting in declared_settings(cls):
            value = getattr(target, setting.name)
            if not isinstance(value, property):
                setting.check(cls.__name__, value)


def settings_table(classes: Iterable[type]) -> list[tuple[str, str, str]]:
    """(class, setting, allowed range) for every setting a class declares itself."""
    rows = []
    for cls in classes:
        for setting in vars(cls).get("numeric_settings", ()):
            rows.append((cls.__name__, setting.name, setting.describe()))
    return rows
