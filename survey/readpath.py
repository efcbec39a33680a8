"""Count tables from the answer vectors: the selected responses' vectors decoded into numpy
arrays and counted there (no Flask, no database; :mod:`survey.queries` reads the rows).

Input: one row per selected response, ``(catalog_version_id, answer_code, worked_in,
ru_last_year, foreign_last_year)``, and the layout (:func:`survey.vectors.layout`) of each
catalogue version. Output: exactly the count tables the SQL aggregation over the answer
rows gave (see :mod:`analysis`): what a cell counts as is one lookup per character, and
every table is a histogram.

How (no Python loop over respondents): per catalogue version, the vectors are joined into
one byte string and translated to cell *classes* (:data:`CLASS_OF`) with one
``bytes.translate``; the matrix is turned cell-major (one contiguous row of responses per
cell, so that every later operation runs over contiguous memory); a kind's cells outside
the segment's period are set to "excluded". Each practice then gets one 2-D histogram of
(Russian class, foreign class) per respondent, split by whether the respondent worked in
both kinds: the prevalence and rating tables are its margins, the paired tables its
both-kinds part. A category's class per respondent and kind is the maximum of its
practices' classes (the classes are ordered excluded < no < dk < existed) with the mean
rating rounded half away from zero, and gets the same histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import compress
from operator import itemgetter

import numpy as np

from survey.lazy import LazyModule
from survey.questions import KIND_WORKERS
from survey.vectors import KINDS

pd = LazyModule("pandas")  # imported on the first count table, like survey.queries

# Cell classes, ordered so that a category's class is the maximum of its practices':
# existed (with or without a rating) beats don't know, which beats no.
EXCLUDED, NO, DK, EXISTED = 0, 1, 2, 3  # EXISTED + r (r = 1..5): existed and rated r
N_CLASSES = 9
RATED = slice(EXISTED + 1, N_CLASSES)  # the classes of a rated answer, rating 1..5 in order
YES = slice(EXISTED, N_CLASSES)  # every class of "the practice existed"
_INVALID = 255

_CHARACTER_CLASS = {
    ".": EXCLUDED,  # no answer row
    "a": EXCLUDED,  # na: a kind not worked in
    "r": EXCLUDED,  # not my role
    "n": NO,
    "d": DK,
    "e": EXISTED,
    "p": EXISTED,
    "m": EXISTED,  # applied, "mixed": never in a rating statistic
    "y": EXISTED,
    **{str(r): EXISTED + r for r in range(1, 6)},  # applied, rated r
    **{"ABCDE"[r - 1]: EXISTED + r for r in range(1, 6)},  # former yes, rated r
}
CLASS_OF = bytes(_CHARACTER_CLASS.get(chr(b), _INVALID) for b in range(256))

_BLOCK = 4096  # rows per step of the cell-major transpose (a block stays in the cache)


@dataclass(frozen=True)
class Block:
    """The decoded vectors of the selected responses of one catalogue version.

    ``classes`` is cell-major: row ``2 * i + k`` holds the class of practice
    ``practice_ids[i]`` and kind ``KINDS[k]`` for every response (uint8); ``both`` says
    which responses worked in both kinds (only they enter the practice-level pairs);
    ``index`` is each response's position in the rows given to :func:`decode`.
    """

    practice_ids: tuple[str, ...]
    classes: np.ndarray
    both: np.ndarray
    index: np.ndarray

    @property
    def n(self) -> int:
        """Responses in the block."""
        return self.classes.shape[1]


def decode(
    rows: Sequence[tuple],
    layout_of: Callable[[int], Sequence[str]],
    period: str | None = None,
) -> list[Block]:
    """The selected responses' vectors as one :class:`Block` per catalogue version.

    ``rows`` are ``(catalog_version_id, answer_code, worked_in, ru_last_year,
    foreign_last_year)``; ``layout_of(version_id)`` gives a version's practice ids in vector
    order (:func:`survey.vectors.layout`).
    With a ``period``, a kind's cells count only for respondents who worked in that kind
    and last did so in that period (the others are excluded, as if not asked). A response
    without a vector (NULL) has no cell to count. A vector of the wrong length or with a
    character outside the alphabet raises ValueError: counting it would misplace answers.
    """
    if not rows:
        return []
    # The columns (zip(*rows) would take ten times longer at 100,000 rows); the periods
    # only when they matter.
    columns = [list(map(itemgetter(i), rows)) for i in range(5 if period is not None else 3)]
    position = np.arange(len(rows))
    if None in columns[1]:
        has_code = [code is not None for code in columns[1]]
        columns = [list(compress(column, has_code)) for column in columns]
        position = position[np.array(has_code, dtype=bool)]
    version, codes, worked_in, *last_year = columns
    worked = np.array(worked_in, dtype=object)
    both = worked == "both"
    keep = {}
    if period is not None:
        for kind, years in zip(KINDS, last_year, strict=True):
            in_kind = np.zeros(len(worked), dtype=bool)
            for code in KIND_WORKERS[kind]:
                in_kind |= worked == code
            keep[kind] = (in_kind & (np.array(years, dtype=object) == period)).view(np.uint8)
    distinct = dict.fromkeys(version)  # the versions, in order of first appearance
    versions = np.array(version) if len(distinct) > 1 else None
    blocks = []
    for version_id in distinct:
        practice_ids = tuple(layout_of(version_id))
        chosen = None if versions is None else versions == version_id  # None: every response
        mine = codes if chosen is None else list(compress(codes, chosen))
        classes = _classes(mine, 2 * len(practice_ids), version_id)
        for k, kind in enumerate(KINDS):
            if kind in keep:  # the kind's cells of a response outside the period: EXCLUDED
                kept = keep[kind] if chosen is None else keep[kind][chosen]
                np.multiply(classes[k::2], kept, out=classes[k::2])
        if chosen is None:
            blocks.append(Block(practice_ids, classes, both, position))
        else:
            blocks.append(Block(practice_ids, classes, both[chosen], position[chosen]))
    return blocks


def _classes(codes: list[str], width: int, version_id) -> np.ndarray:
    """The cell classes of vectors of one layout, cell-major (cells x responses, uint8)."""
    lengths = np.fromiter(map(len, codes), dtype=np.int64, count=len(codes))
    if (lengths != width).any():
        wrong = int(lengths[lengths != width][0])
        raise ValueError(
            f"an answer vector of {wrong} cells in catalogue version {version_id!r}, "
            f"whose layout has {width}"
        )
    try:
        text = "".join(codes).encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("an answer vector with a character outside the alphabet") from None
    translated = text.translate(CLASS_OF)
    if _INVALID.to_bytes(1, "little") in translated:
        raise ValueError("an answer vector with a character outside the alphabet")
    by_response = np.frombuffer(translated, dtype=np.uint8).reshape(len(codes), width)
    # Cell-major, in blocks of rows: a plain transposed copy is several times slower.
    classes = np.empty((width, len(codes)), dtype=np.uint8)
    for start in range(0, len(codes), _BLOCK):
        classes[:, start : start + _BLOCK] = by_response[start : start + _BLOCK].T
    return classes


def _joint(ru: np.ndarray, foreign: np.ndarray, split: np.ndarray | None = None) -> np.ndarray:
    """Histogram of (Russian class, foreign class) over the responses, per row of ``ru``
    and ``foreign`` (items x responses): items x N_CLASSES x N_CLASSES; with a boolean
    ``split`` per response, two of them: items x 2 (split False, True) x ... ."""
    cells = N_CLASSES * N_CLASSES
    pair = ru * np.uint8(N_CLASSES) + foreign  # < 81: fits in uint8
    if split is not None:
        pair += split.view(np.uint8) * np.uint8(cells)  # < 162
        cells *= 2
    out = np.empty((pair.shape[0], cells), dtype=np.int64)
    for i, row in enumerate(pair):  # a loop over items; each bincount runs over responses
        out[i] = np.bincount(row, minlength=cells)
    shape = (N_CLASSES, N_CLASSES) if split is None else (2, N_CLASSES, N_CLASSES)
    return out.reshape(pair.shape[0], *shape)


def practice_histograms(blocks: Iterable[Block]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(practice_ids, joint, paired)``: per practice, the histogram of (Russian class,
    foreign class) over every selected respondent (``joint``) and over those who worked
    in both kinds (``paired``), summed over catalogue versions by practice id."""
    index: dict[str, int] = {}
    parts = []
    for block in blocks:
        ids = [index.setdefault(pid, len(index)) for pid in block.practice_ids]
        split = _joint(block.classes[0::2], block.classes[1::2], block.both)
        parts.append((ids, split.sum(axis=1), split[:, 1]))
    joint = np.zeros((len(index), N_CLASSES, N_CLASSES), dtype=np.int64)
    pairs = np.zeros_like(joint)
    for ids, part_joint, part_paired in parts:
        joint[ids] += part_joint  # ids are distinct within a layout
        pairs[ids] += part_paired
    return list(index), joint, pairs


def category_histograms(
    blocks: Iterable[Block], category_of: Mapping[str, str]
) -> tuple[list[str], np.ndarray]:
    """``(category_ids, joint)``: per category, the histogram of (Russian class, foreign
    class) of the respondents' category-level answers, summed over catalogue versions.

    A respondent's category-level class in one kind: "existed" if any practice of the
    category existed, else don't know if any answer is don't know, else no if any is no,
    else excluded (no counted answer); an "existed" carries the mean of the respondent's
    ratings in the category, rounded half away from zero (like the SQL
    ``round(avg(numeric))``). Practices without a category are left out (like the inner
    join to ``practice``). Every respondent counts, whichever kinds they worked in.
    """
    index: dict[str, int] = {}
    parts = []
    for block in blocks:
        members: dict[int, list[int]] = {}
        for i, pid in enumerate(block.practice_ids):
            if pid in category_of:
                members.setdefault(index.setdefault(category_of[pid], len(index)), []).append(i)
        if not members or not block.n:
            continue
        ids = list(members)
        per_kind = []
        for k in range(len(KINDS)):
            out = np.empty((len(ids), block.n), dtype=np.uint8)
            for j, c in enumerate(ids):
                cells = [2 * i + k for i in members[c]]
                out[j] = _category_class(block.classes[cells])
            per_kind.append(out)
        parts.append((ids, _joint(*per_kind)))
    joint = np.zeros((len(index), N_CLASSES, N_CLASSES), dtype=np.int64)
    for ids, part in parts:
        joint[ids] += part
    return list(index), joint


def _category_class(classes: np.ndarray) -> np.ndarray:
    """Per response, the category-level class from its practices' cells (cells x responses)."""
    best = classes.max(axis=0)
    rated = (classes > EXISTED).sum(axis=0, dtype=np.uint16)
    # the sum of the ratings: a rated class is EXISTED + rating, every other class counts 0
    total = np.maximum(classes, EXISTED).sum(axis=0, dtype=np.uint16) - EXISTED * len(classes)
    # round(total / rated) half away from zero (the ratings are positive); exact in floats:
    # a mean k + 1/2 is exactly representable and any other lies 1/(2 * rated) away from it
    mean = np.floor(total / np.maximum(rated, 1) + 0.5).astype(np.uint8)
    return np.where(rated > 0, EXISTED + mean, best)


def count_tables(
    keys: Sequence[str], joint: np.ndarray, paired: np.ndarray, key: str
) -> dict[str, pd.DataFrame]:
    """The four count tables of :mod:`analysis` (``prevalence``, ``ratings``, ``paired``,
    ``paired_ratings``, key column ``key``) from per-item histograms of (Russian class,
    foreign class): ``joint`` for the answers about each kind, ``paired`` for the pairs.

    Rows, their order and dtypes are those of the SQL aggregation: an item appears in a
    table only with a non-zero count there; sorted by key, kind and rating.
    """
    order = sorted(range(len(keys)), key=keys.__getitem__)
    keys = [keys[i] for i in order]
    joint, paired = joint[order], paired[order]
    margins = np.stack([joint.sum(axis=2), joint.sum(axis=1)], axis=1)  # item x kind x class
    kinds = sorted(range(len(KINDS)), key=KINDS.__getitem__)  # "foreign" before "ru"
    margins = margins[:, kinds]
    kind_names = [KINDS[k] for k in kinds]
    return {
        "prevalence": _prevalence(keys, kind_names, margins, key),
        "ratings": _ratings(keys, kind_names, margins, key),
        **_pairs(keys, paired, key),
    }


def _labels(names: Sequence[str], index: np.ndarray):
    """``names[i]`` for every i of ``index``; an empty column is of dtype object, as in an
    empty table of the SQL aggregation."""
    return [names[i] for i in index] if len(index) else np.array([], dtype=object)


def _prevalence(keys, kind_names, margins, key) -> pd.DataFrame:
    counts = np.stack(
        [margins[:, :, YES].sum(axis=2), margins[:, :, NO], margins[:, :, DK]], axis=2
    )  # item x kind x (yes, no, dk)
    item, kind = np.nonzero(counts.sum(axis=2))
    columns = [key, "company_kind", "yes", "no", "dk"]
    if not len(item):
        return pd.DataFrame(columns=columns).astype({"yes": int, "no": int, "dk": int})
    chosen = counts[item, kind]
    return pd.DataFrame(
        {
            key: _labels(keys, item),
            "company_kind": _labels(kind_names, kind),
            "yes": chosen[:, 0],
            "no": chosen[:, 1],
            "dk": chosen[:, 2],
        }
    )


def _ratings(keys, kind_names, margins, key) -> pd.DataFrame:
    item, kind, rating = np.nonzero(margins[:, :, RATED])
    return pd.DataFrame(
        {
            key: _labels(keys, item),
            "company_kind": _labels(kind_names, kind),
            "rating": (rating + 1).astype(np.int64),
            "n": margins[:, :, RATED][item, kind, rating],
        }
    )


def _pairs(keys, paired, key) -> dict[str, pd.DataFrame]:
    cells = {
        "yes_yes": paired[:, YES, YES].sum(axis=(1, 2)),
        "yes_no": paired[:, YES, NO].sum(axis=1),
        "no_yes": paired[:, NO, YES].sum(axis=1),
        "no_no": paired[:, NO, NO],
    }
    item = np.nonzero(sum(cells.values()))[0]
    table = pd.DataFrame({key: _labels(keys, item)})
    for name, values in cells.items():
        table[name] = values[item].astype(np.int64)
    both_rated = paired[:, RATED, RATED]
    item, ru, foreign = np.nonzero(both_rated)
    ratings = pd.DataFrame(
        {
            key: _labels(keys, item),
            "rating_ru": (ru + 1).astype(np.int64),
            "rating_foreign": (foreign + 1).astype(np.int64),
            "n": both_rated[item, ru, foreign],
        }
    )
    return {"paired": table, "paired_ratings": ratings}


def practice_tables(blocks: Iterable[Block]) -> dict[str, pd.DataFrame]:
    """The four count tables at practice level (key column ``practice_id``)."""
    keys, joint, paired = practice_histograms(blocks)
    return count_tables(keys, joint, paired, "practice_id")


def category_tables(
    blocks: Iterable[Block], category_of: Mapping[str, str]
) -> dict[str, pd.DataFrame]:
    """The four count tables at category level (key column ``category_id``); the pairs are
    every respondent with a category-level answer about both kinds (see
    :func:`category_histograms`)."""
    keys, joint = category_histograms(blocks, category_of)
    return count_tables(keys, joint, joint, "category_id")


# A kind's answer in the adjusted model (analysis.adjusted): 0 no usable answer (don't
# know, excluded), 1 'no', 2 existed; as y: NaN, 0.0, 1.0.
_Y_CODE = bytes([0, NO, 0, *(2 for _ in range(EXISTED, N_CLASSES))]) + bytes(256 - N_CLASSES)
_Y_VALUE = np.array([np.nan, 0.0, 1.0])


def kind_patterns(
    blocks: Iterable[Block], covariates: pd.DataFrame, practice_ids=None
) -> pd.DataFrame:
    """Respondents per practice grouped by answer pattern, for the adjusted model:
    [practice_id, y_ru, y_foreign, *covariates.columns, n] (see
    :func:`survey.queries.kind_patterns`).

    ``covariates`` has one row per row given to :func:`decode` (the response's covariates,
    None where missing). ``y_<kind>`` is 1.0 (existed), 0.0 (no) or NaN (no usable
    answer); a respondent without a usable answer about either kind is left out. Only the
    practices of ``practice_ids`` when given.
    """
    labels = list(covariates.columns)
    columns = ["practice_id", "y_ru", "y_foreign", *labels, "n"]
    blocks = [block for block in blocks if block.n]
    if not blocks:
        return _typed_patterns(pd.DataFrame([], columns=columns), labels)
    # One id per distinct combination of covariates (a loop-free GROUP BY of the responses)
    pattern = covariates.groupby(labels, dropna=False, sort=False).ngroup().to_numpy()
    combos, first = np.unique(pattern, return_index=True)
    width = len(combos) * 9  # pattern x (y_ru code, y_foreign code)
    wanted = None if practice_ids is None else set(practice_ids)
    found: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for block in blocks:
        codes = np.frombuffer(block.classes.tobytes().translate(_Y_CODE), dtype=np.uint8)
        codes = codes.reshape(block.classes.shape).astype(np.int64)
        base = pattern[block.index] * 9
        for i, pid in enumerate(block.practice_ids):
            if wanted is not None and pid not in wanted:
                continue
            counts = np.bincount(base + codes[2 * i] * 3 + codes[2 * i + 1], minlength=width)
            counts[::9] = 0  # no usable answer about either kind: left out
            keys = np.flatnonzero(counts)
            found.setdefault(pid, []).append((keys, counts[keys]))
    parts = []
    for pid in sorted(found):
        keys = np.concatenate([k for k, _ in found[pid]])
        ns = np.concatenate([n for _, n in found[pid]])
        keys, inverse = np.unique(keys, return_inverse=True)  # summed over versions
        ns = np.bincount(inverse, weights=ns).astype(np.int64)
        parts.append((pid, keys, ns))
    keys = np.concatenate([k for _, k, _ in parts]) if parts else np.zeros(0, np.int64)
    frame = pd.DataFrame(
        {
            "practice_id": [pid for pid, k, _ in parts for _ in range(len(k))],
            "y_ru": _Y_VALUE[(keys % 9) // 3],
            "y_foreign": _Y_VALUE[keys % 3],
        }
    )
    chosen = covariates.iloc[first[keys // 9]].reset_index(drop=True)
    frame = pd.concat([frame, chosen], axis=1)
    frame["n"] = np.concatenate([n for *_, n in parts]) if parts else np.zeros(0, np.int64)
    return _typed_patterns(frame[columns], labels)


def _typed_patterns(frame: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    frame = frame.astype({"y_ru": "float64", "y_foreign": "float64", "n": "int64"})
    frame[labels] = frame[labels].astype(object).where(frame[labels].notna(), None)
    return frame
