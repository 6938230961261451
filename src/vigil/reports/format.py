"""How a report writes numbers, intervals and differences (the same in the HTML page and its Markdown twin).

>>> print(num(0.12345), num(None), num(3), delta(0.5, 0.25), delta(2, 5), interval(0.1, 0.25), interval(None, 1))
0.123 – 3 +0.250 -3 [0.100, 0.250] –
>>> dig({"a": {"b": 1}}, "a.b"), dig({"a": None}, "a.b"), dig({"kinetica-1.5": 2}, ("kinetica-1.5",))
(1, None, 2)
>>> slug("Set: recent/1"), slug("")
('Set_recent_1', 'x')
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["MISSING", "delta", "dig", "finite", "interval", "num", "slug"]

MISSING = "–"  # what a report writes for a number that is not there (None, NaN, infinite)


def finite(x: Any) -> bool:
    """A real number that is neither NaN nor infinite (a bool is not a number here)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def num(x: Any, digits: int = 3) -> str:
    """An int as it is, a float with ``digits`` decimals, anything missing as a dash."""
    if isinstance(x, (bool, int)):
        return str(x)
    return f"{x:.{digits}f}" if finite(x) else MISSING


def delta(a: Any, b: Any, digits: int = 3) -> str:
    """``a − b`` with its sign; a dash when either is missing."""
    if not (finite(a) and finite(b)):
        return MISSING
    d = a - b
    return f"{d:+d}" if isinstance(d, int) else f"{d:+.{digits}f}"


def interval(lo: Any, hi: Any, digits: int = 3) -> str:
    """``[lo, hi]``; a dash when either end is missing."""
    return f"[{num(lo, digits)}, {num(hi, digits)}]" if finite(lo) and finite(hi) else MISSING


def dig(doc: Mapping[str, Any] | None, path: str | tuple[str, ...]) -> Any:
    """``doc['a']['b']`` for path ``'a.b'`` (or the keys as a tuple, for keys with dots such as
    ``'kinetica-1.5'``); None when any level is missing or None."""
    value: Any = doc
    for key in (path.split(".") if isinstance(path, str) else path):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def slug(text: str) -> str:
    """A name safe for an anchor or a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "x"
