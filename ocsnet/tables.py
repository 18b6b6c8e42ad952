"""The one plain-text table formatter (CLI output, reports, validation, benchmarks).

Ground floor of the pipeline: it knows strings and numbers only.

Examples
--------
>>> print(format_table(["name", "GPUs"], [["small-ring", 8], ["lite-ocs", 4096]], align="lr"))
name        GPUs
small-ring     8
lite-ocs    4096
"""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["cell", "format_table", "write_csv"]


def cell(value: Any) -> str:
    """One value as table text: ``None`` as ``-``, floats with 4 significant digits, ``inf`` as ``inf``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "inf" if math.isinf(value) and value > 0 else f"{value:.4g}"
    return str(value)


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str = "l", indent: str = "",
                 rule: bool = False, free_last: bool = False) -> str:
    """An aligned plain-text table, columns separated by two spaces, no trailing blanks.

    Parameters
    ----------
    header : sequence of str
    rows : sequence of sequences
        Cells are formatted by :func:`cell`.
    align : str
        One letter per column, ``l`` (left) or ``r`` (right); a single letter
        applies to every column, and the last letter repeats for columns beyond it.
    indent : str
        Put in front of every line.
    rule : bool
        A line of dashes under the header.
    free_last : bool
        The last column is not padded to its longest cell (a long free-text column).
    """
    cells = [[cell(v) for v in r] for r in rows]
    n = len(header)
    widths = [max([len(str(h))] + [len(r[i]) for r in cells if i < len(r)]) for i, h in enumerate(header)]
    if free_last and n:
        widths[-1] = len(str(header[-1]))
    al = [align[min(i, len(align) - 1)] for i in range(n)]

    def line(parts) -> str:
        out = [p.rjust(w) if a == "r" else p.ljust(w) for p, w, a in zip(parts, widths, al)]
        return (indent + "  ".join(out)).rstrip()

    lines = [line([str(h) for h in header])]
    if rule:
        lines.append(line(["-" * w for w in widths]))
    lines += [line(r) for r in cells]
    return "\n".join(lines)


def write_csv(path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Write a header and rows as a UTF-8 CSV file; ``None`` becomes an empty cell."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([["" if v is None else v for v in r] for r in rows])
