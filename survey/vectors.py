"""The compact answer vector of a response: one character per (practice, kind) cell.

The answer rows (table ``answer``, with their constraints) stay the source of truth; each
response also carries ``answer_code``, derived from its rows in the same transaction by
every write path, so that reading a study costs one short string per respondent instead
of ~100 rows. ``flask --app survey verify-answers`` checks that every vector equals its
rows.

Layout: the real practices of the response's catalogue version, in the order of that
version's snapshot (``catalog_version.content["practices"]``), each followed by its two
kinds: cell ``2 * i + k`` is practice ``i`` and kind ``COMPANY_KINDS[k]`` ("ru",
"foreign"). A practice added in a later version is simply absent from earlier layouts, so
it counts only among responses that were asked it. Fictitious practices have no cell
(their answers live apart, out of every analysis).

Alphabet (one ASCII character per cell):

======  =====================================================================
``.``   no answer row (a draft's page not answered yet)
``a``   ``na``: a kind the respondent did not work in
``n``   ``no``: the practice did not exist
``d``   ``dk``: don't know
``r``   ``not_my_role``
``e``   ``existed``, but not for me
``p``   ``applied``, no rating yet (a draft)
``1-5`` ``applied`` with that rating
``m``   ``applied`` with "mixed / can't say"
``y``   former ``yes`` without a rating
``A-E`` former ``yes`` with rating 1-5
======  =====================================================================
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from survey.questions import COMPANY_KINDS as KINDS  # the cells' kinds, in cell order

MISSING = "."

_RATED_YES = "ABCDE"


def cell_code(met: str | None, rating: int | None, mixed: bool = False) -> str:
    """The character of one answer (``met`` None: no answer row)."""
    if met is None:
        return MISSING
    if met == "applied":
        if mixed:
            return "m"
        return str(int(rating)) if rating else "p"
    if met == "yes":
        return _RATED_YES[int(rating) - 1] if rating else "y"
    try:
        return {"na": "a", "no": "n", "dk": "d", "not_my_role": "r", "existed": "e"}[met]
    except KeyError:
        raise ValueError(f"unknown answer code {met!r}") from None


def decode_cell(ch: str) -> tuple[str | None, int | None, bool]:
    """(met, rating, mixed) of one character: the inverse of :func:`cell_code`."""
    if ch == MISSING:
        return None, None, False
    if ch in "12345":
        return "applied", int(ch), False
    if ch in _RATED_YES:
        return "yes", _RATED_YES.index(ch) + 1, False
    simple = {
        "a": "na",
        "n": "no",
        "d": "dk",
        "r": "not_my_role",
        "e": "existed",
        "p": "applied",
        "m": "applied",
        "y": "yes",
    }
    if ch not in simple:
        raise ValueError(f"unknown cell character {ch!r}")
    return simple[ch], None, ch == "m"


def layout(content: Mapping) -> tuple[str, ...]:
    """The practice ids of a catalogue version's snapshot, in vector order."""
    return tuple(p["id"] for p in content.get("practices", ()))


def encode(
    rows: Iterable[tuple[str, str, str, int | None, bool]], practice_ids: tuple[str, ...]
) -> str:
    """The vector of one response from its answer rows ``(practice_id, company_kind, met,
    rating, rating_mixed)``; rows of practices outside the layout are ignored."""
    index = {pid: i for i, pid in enumerate(practice_ids)}
    cells = [MISSING] * (2 * len(practice_ids))
    for practice_id, kind, met, rating, mixed in rows:
        i = index.get(practice_id)
        if i is not None:
            cells[2 * i + KINDS.index(kind)] = cell_code(met, rating, bool(mixed))
    return "".join(cells)


def as_matrix(codes: list[str], width: int) -> np.ndarray:
    """Vectors of one layout as a (responses x cells) uint8 matrix of their characters."""
    if not codes:
        return np.zeros((0, width), dtype=np.uint8)
    matrix = np.frombuffer("".join(codes).encode("ascii"), dtype=np.uint8)
    return matrix.reshape(len(codes), width)
