"""The README's table of the last ``make bench``, written between two markers.

``python -m benchmarks.run --readme`` (what ``make bench`` runs) replaces the text between
``<!-- bench:start -->`` and ``<!-- bench:end -->`` in README.md with the run's table, the
command and the machine; nothing outside the markers changes.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"


def _number(value: float) -> str:
    """Three significant digits; whole numbers from 100 on; a dash for no value."""
    if value != value:  # NaN: no baseline
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(lines: Sequence) -> str:
    """A markdown table of benchmark lines (``benchmarks.run.Line``)."""
    out = [
        "| measured | ours | baseline | ratio | target | met |",
        "|---|---|---|---|---|---|",
    ]
    for line in lines:
        base = _number(line.baseline)
        out.append(
            f"| {_cell(line.what)} | {_number(line.ours)} {line.unit} | "
            f"{base + ' ' + line.unit if base != '—' else base} | {_number(line.ratio)} | "
            f"{_cell(line.target)} | {'yes' if line.ok else '**no**'} |"
        )
    return "\n".join(out)


def block(lines: Sequence, argv: Sequence[str], when: dt.datetime | None = None) -> str:
    """What goes between the markers: when and how the run was made, then its table."""
    when = when or dt.datetime.now().astimezone()
    command = shlex.join(["python", "-m", "benchmarks.run", *argv])
    machine = (
        f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    return (
        f"Written by `make bench` on {when:%Y-%m-%d %H:%M} (`{command}`; {machine}). "
        "Each ratio is against a baseline measured in the same run.\n\n" + table(lines)
    )


def replace_block(text: str, content: str) -> str:
    """``text`` with everything between the markers replaced by ``content``."""
    start = text.find(START)
    end = text.find(END, start + len(START))
    if start < 0 or end < 0:
        raise ValueError(f"no {START} ... {END} markers")
    return f"{text[: start + len(START)]}\n{content}\n{text[end:]}"


def write(path: str | Path, lines: Sequence, argv: Sequence[str]) -> None:
    """Put the run's table into the README at ``path``, between its markers."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    path.write_text(replace_block(text, block(lines, argv)), encoding="utf-8")
