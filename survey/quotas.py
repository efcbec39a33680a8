"""Quotas: targets per background value in a wave, their progress, and closed cells.

A quota names one background answer (a question of :data:`survey.questions.BACKGROUND`
and one of its codes) in one wave, with a target count of completed responses or a
target share. A share is of the wave's target when it has one, else of the wave's
completed responses so far (a proportion to keep: the cell is full while its share of
the completes is at least the target share). Completed responses are counted by
:func:`survey.queries.quota_counts`: submitted, not demo, not flagged as a likely bot.

A quota that ``closes`` turns new respondents in a full cell away after the background
page: their draft is deleted (:func:`survey.responses.screen_out`) and only the channel's
'screened_out' counter remembers them. Drafts already past the background page finish, so
a cell may end a little over its target.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from survey import queries
from survey.extensions import db
from survey.fieldwork import FieldworkError, wave_by_id
from survey.models import Quota, Response, Wave
from survey.questions import BACKGROUND, BACKGROUND_BY_FIELD

# Only the general background questions carry quotas (not a kind's block: it exists only
# for respondents who worked in that kind of company).
QUOTA_FIELDS = tuple(q.field for q in BACKGROUND)
MAX_TARGET_COUNT = 1_000_000


@dataclass(frozen=True)
class QuotaProgress:
    """One quota of a wave and how far it is filled.

    ``target`` is a number of completed responses (a share turned into one, rounded up;
    None while a share of a wave without target has no completes to be a share of);
    ``share`` is the cell's share of the wave's completed responses (None before the first).
    """

    id: int
    field: str
    value: str
    question_ru: str
    question_en: str
    label_ru: str
    label_en: str
    target_count: int | None
    target_share: float | None
    closes: bool
    target: int | None
    achieved: int
    completed: int
    share: float | None
    full: bool

    def label(self, lang: str) -> str:
        """The value's label in ``lang``."""
        return self.label_en if lang == "en" else self.label_ru

    def question(self, lang: str) -> str:
        """The question's short name in ``lang``."""
        return self.question_en if lang == "en" else self.question_ru


def _check(field: str, value: str, target_count, target_share) -> tuple[int | None, float | None]:
    """The validated target, or :class:`FieldworkError` naming the input at fault."""
    if field not in QUOTA_FIELDS:
        raise FieldworkError("field", f"no background question {field!r}")
    if value not in BACKGROUND_BY_FIELD[field].codes():
        raise FieldworkError("value", f"{value!r} is not an answer of {field!r}")
    if (target_count is None) == (target_share is None):
        raise FieldworkError("target_count", "set either a target count or a target share")
    if target_count is not None:
        if isinstance(target_count, bool) or not isinstance(target_count, int):
            raise FieldworkError("target_count", "the target count must be a whole number")
        if not 1 <= target_count <= MAX_TARGET_COUNT:
            raise FieldworkError("target_count", f"between 1 and {MAX_TARGET_COUNT}")
        return target_count, None
    if isinstance(target_share, bool) or not isinstance(target_share, int | float):
        raise FieldworkError("target_share", "the target share must be a number")
    if not (math.isfinite(target_share) and 0 < target_share <= 1):
        raise FieldworkError("target_share", "a share is more than 0 and at most 1")
    return None, float(target_share)


def quotas(wave: Wave) -> list[Quota]:
    """The quotas of a wave, in the order they were set."""
    return list(db.session.scalars(select(Quota).filter_by(wave_id=wave.id).order_by(Quota.id)))


def set_quota(
    wave: Wave,
    field: str,
    value: str,
    target_count: int | None = None,
    target_share: float | None = None,
    closes: bool = False,
) -> Quota:
    """Set (create or replace) the quota of one background value in a wave; commits.

    :class:`~survey.fieldwork.FieldworkError` on an unknown question or answer code, or
    unless exactly one of a count (1..1,000,000) and a share (0 < share <= 1) is given.
    """
    count, share = _check(field, value, target_count, target_share)
    quota = db.session.scalar(select(Quota).filter_by(wave_id=wave.id, field=field, value=value))
    if quota is None:
        quota = Quota(wave_id=wave.id, field=field, value=value)
        db.session.add(quota)
    quota.target_count, quota.target_share, quota.closes = count, share, bool(closes)
    try:
        db.session.commit()
    except IntegrityError:  # the same cell set at the same moment by another request
        db.session.rollback()
        raise FieldworkError("value", "a quota for this value was just set; reload") from None
    return quota


def delete_quota(wave: Wave, quota_id: int) -> None:
    """Delete a quota of a wave; commits. :class:`FieldworkError` if it has none such."""
    quota = db.session.scalar(select(Quota).filter_by(id=quota_id, wave_id=wave.id))
    if quota is None:
        raise FieldworkError("quota", "this wave has no such quota")
    db.session.delete(quota)
    db.session.commit()


def _target(quota: Quota, wave: Wave, completed: int) -> int | None:
    """A quota's target as a number of completed responses (see the module's doc)."""
    if quota.target_count is not None:
        return quota.target_count
    base = wave.target if wave.target is not None else completed
    # Rounded up (at least that share), without float dust: 0.3 * 10 is 3, not 4.
    target = math.ceil(round(quota.target_share * base, 9))
    return target or None


def progress(wave: Wave, rows: list[Quota] | None = None) -> list[QuotaProgress]:
    """Every quota of a wave (or the given ones of it) with its target, the completed
    responses in its cell, the cell's share of the wave's completes and whether it is
    full (one counting query)."""
    rows = quotas(wave) if rows is None else rows
    completed, achieved = queries.quota_counts(wave.id, [(q.field, q.value) for q in rows])
    out = []
    for quota in rows:
        question = BACKGROUND_BY_FIELD[quota.field]
        target = _target(quota, wave, completed)
        n = achieved.get((quota.field, quota.value), 0)
        out.append(
            QuotaProgress(
                id=quota.id,
                field=quota.field,
                value=quota.value,
                question_ru=question.short("ru"),
                question_en=question.short("en"),
                label_ru=question.label(quota.value, "ru"),
                label_en=question.label(quota.value, "en"),
                target_count=quota.target_count,
                target_share=quota.target_share,
                closes=quota.closes,
                target=target,
                achieved=n,
                completed=completed,
                share=n / completed if completed else None,
                full=target is not None and n >= target,
            )
        )
    return out


def closed_cell(wave: Wave, background: Mapping[str, object]) -> QuotaProgress | None:
    """The full, closing quota cell a respondent with this background falls in, or None.

    Counts only when the wave has a closing quota on one of the respondent's values.
    """
    closing = [q for q in quotas(wave) if q.closes and background.get(q.field) == q.value]
    if not closing:
        return None
    return next((row for row in progress(wave, closing) if row.full), None)


def cell_is_closed(response: Response) -> bool:
    """Whether a response's background falls in a full quota cell that closes."""
    background = {field: getattr(response, field) for field in QUOTA_FIELDS}
    return closed_cell(wave_by_id(response.wave_id), background) is not None
