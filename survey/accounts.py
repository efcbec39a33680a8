"""Researcher accounts: roles, one-time set-up and invitation links, revocation.

Two roles: an **owner** manages fieldwork and researcher accounts, an **analyst** reads
dashboards, the API and exports. Accounts are made three ways:

- the CLI (``flask --app survey create-researcher EMAIL --role owner|analyst``);
- a **set-up link** (kind ``setup``), only while no account exists: ``make run`` prints it
  (``flask --app survey setup-link --if-none``) and the first owner chooses an e-mail and
  password in the browser;
- an owner's **invitation** (kind ``invite``) of a given e-mail with a given role: the
  invited researcher sets a password through the link.

A link's token is shown once; only its SHA-256 is stored (``account_link.token_hash``). It
expires after ``SETUP_LINK_HOURS`` / ``INVITE_LINK_HOURS`` and works once: redeeming marks
``used_at`` with a conditional UPDATE in the transaction that creates the account, so two
browsers cannot both use it. Opening a link (GET) does not consume it: messenger previews
and mail scanners fetch links too.

There is always an active owner: an owner cannot revoke their own account (another owner
can, or the CLI), and the last active owner cannot be revoked or made an analyst.
"""

from __future__ import annotations

import datetime as dt
import secrets

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import generate_password_hash

from survey import auth, fieldwork  # fieldwork.utcnow: naive UTC, as link moments are stored
from survey.extensions import db
from survey.models import ROLES, AccountLink, Researcher

SETUP, INVITE = "setup", "invite"
MAX_TOKEN = 100  # longer path segments are not tokens of ours: no database look-up


class AccountError(ValueError):
    """An account change that cannot be made; the message is for the owner (translated)."""


def has_researchers() -> bool:
    """Whether any researcher account exists (active or not)."""
    return db.session.scalar(select(Researcher.id).limit(1)) is not None


def _new_link(kind: str, hours: int, role: str, email: str | None, by: int | None) -> str:
    token = secrets.token_urlsafe(32)
    now = fieldwork.utcnow()
    db.session.add(
        AccountLink(
            kind=kind,
            token_hash=auth.token_hash(token),
            email=email,
            role=role,
            created_by=by,
            created_at=now,
            expires_at=now + dt.timedelta(hours=hours),
        )
    )
    # Expired links are of no use to anyone: drop them while here.
    db.session.execute(delete(AccountLink).where(AccountLink.expires_at <= now))
    db.session.commit()
    return token


def create_setup_link() -> str:
    """A one-time link token for the first owner; earlier unused set-up links stop working.

    Raises :class:`AccountError` when a researcher account exists already.
    """
    if has_researchers():
        raise AccountError(_("A researcher account exists already: no set-up link is needed."))
    db.session.execute(
        delete(AccountLink).where(AccountLink.kind == SETUP, AccountLink.used_at.is_(None))
    )
    return _new_link(SETUP, current_app.config["SETUP_LINK_HOURS"], "owner", None, None)


def _active_account(email: str) -> Researcher | None:
    return db.session.scalar(
        select(Researcher).where(
            func.lower(Researcher.email) == auth.normalise_email(email), Researcher.active
        )
    )


def create_invite(owner: Researcher, email: str, role: str) -> str:
    """An owner's one-time invitation of ``email`` with ``role``; returns the token.

    An earlier unused invitation of the same e-mail stops working. Raises
    :class:`AccountError` when ``owner`` is not an active owner, the role is unknown or an
    active account has this e-mail.
    """
    if not (owner.is_owner and owner.active):
        raise AccountError(_("Only an owner may invite researchers."))
    if role not in ROLES:
        raise AccountError(_("Unknown role."))
    email = auth.normalise_email(email)
    if _active_account(email) is not None:
        raise AccountError(_("An active account with this e-mail exists already."))
    db.session.execute(
        delete(AccountLink).where(
            AccountLink.kind == INVITE, AccountLink.email == email, AccountLink.used_at.is_(None)
        )
    )
    return _new_link(INVITE, current_app.config["INVITE_LINK_HOURS"], role, email, owner.id)


def find_link(token: str | None, kind: str) -> AccountLink | None:
    """The usable link of a token (unused, unexpired, and its account still possible), or
    None. Reading does not consume it."""
    if not token or len(token) > MAX_TOKEN:
        return None
    link = db.session.scalar(
        select(AccountLink).where(
            AccountLink.token_hash == auth.token_hash(token),
            AccountLink.kind == kind,
            AccountLink.used_at.is_(None),
            AccountLink.expires_at > fieldwork.utcnow(),
        )
    )
    if link is None:
        return None
    if kind == SETUP and has_researchers():
        return None
    if kind == INVITE and (link.email is None or _active_account(link.email) is not None):
        return None
    return link


def pending_invites() -> list[AccountLink]:
    """Invitations not used yet and not expired, newest first."""
    return list(
        db.session.scalars(
            select(AccountLink)
            .where(
                AccountLink.kind == INVITE,
                AccountLink.used_at.is_(None),
                AccountLink.expires_at > fieldwork.utcnow(),
            )
            .order_by(AccountLink.created_at.desc(), AccountLink.id.desc())
        )
    )


def redeem(token: str, password: str, email: str | None = None) -> Researcher | None:
    """Use a link once: create (or, for an invitation of a revoked account, reactivate) the
    account with this password, and mark the link used in the same transaction.

    ``email`` is the new owner's address for a set-up link; an invitation's address is
    fixed by the invitation. Returns None, storing nothing, when the link is unknown,
    expired or used, a set-up link finds an account, or an invitation finds an active
    account with its e-mail.
    """
    if len(password) < auth.MIN_PASSWORD:
        raise ValueError(f"a password has at least {auth.MIN_PASSWORD} characters")
    kind = SETUP if email is not None else INVITE
    link = find_link(token, kind)
    if link is None:
        return None
    now = fieldwork.utcnow()
    claim = update(AccountLink).where(
        AccountLink.id == link.id, AccountLink.used_at.is_(None), AccountLink.expires_at > now
    )
    if kind == SETUP:  # another browser, or the CLI, may have made the first account
        claim = claim.where(~select(Researcher.id).exists())
    claimed = db.session.execute(
        claim.values(used_at=now).execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        db.session.rollback()
        return None
    address = auth.normalise_email(email if kind == SETUP else link.email)
    researcher = db.session.scalar(select(Researcher).filter_by(email=address))
    if researcher is None:
        researcher = Researcher(email=address, created_on=now.date(), session_epoch=0)
        db.session.add(researcher)
    elif researcher.active:
        db.session.rollback()
        return None
    else:  # a revoked account invited again: old sessions stay ended
        researcher.end_sessions()
    researcher.active = True
    researcher.role = link.role
    researcher.password_hash = generate_password_hash(password)
    try:
        db.session.commit()
    except IntegrityError:  # the same e-mail created a moment earlier elsewhere
        db.session.rollback()
        return None
    return researcher


def researchers() -> list[Researcher]:
    """Every account, owners first, then by e-mail."""
    by_role = Researcher.role.desc()  # 'owner' sorts after 'analyst'
    return list(db.session.scalars(select(Researcher).order_by(by_role, Researcher.email)))


def _check_owner(owner: Researcher) -> None:
    if not (owner.is_owner and owner.active):
        raise AccountError(_("Only an owner may change researcher accounts."))


def _is_last_owner(target: Researcher) -> bool:
    # Locks the owners' rows (PostgreSQL), so two owners demoting each other at the same
    # moment cannot leave none.
    owners = db.session.scalars(
        select(Researcher.id).where(Researcher.role == "owner", Researcher.active).with_for_update()
    ).all()
    return target.is_owner and target.active and owners == [target.id]


def revoke(owner: Researcher, target: Researcher) -> int:
    """An owner revokes another account (:func:`survey.auth.revoke_researcher`): its
    sessions end, its API tokens and unused invitations are revoked. Returns the number
    of API tokens revoked."""
    _check_owner(owner)
    if target.id == owner.id:
        raise AccountError(_("You cannot revoke your own account; ask another owner."))
    if _is_last_owner(target):
        db.session.rollback()
        raise AccountError(_("The last active owner cannot be revoked."))
    revoked = auth.revoke_researcher(target.email)
    return revoked or 0


def change_role(owner: Researcher, target: Researcher, role: str) -> None:
    """An owner makes an account (their own too) owner or analyst; its sessions end (it
    logs in again with the new role). The last active owner stays an owner."""
    _check_owner(owner)
    if role not in ROLES:
        raise AccountError(_("Unknown role."))
    if not target.active:
        raise AccountError(_("This account is revoked; invite the researcher again."))
    if role == target.role:
        return
    if role != "owner" and _is_last_owner(target):
        db.session.rollback()
        raise AccountError(_("The last active owner cannot become an analyst."))
    target.role = role
    target.end_sessions()
    db.session.commit()
