"""API keys: created once and shown once; only a SHA-256 digest is stored.

A key is 256 random bits, so a fast digest is enough (there is nothing to brute-force that a slow hash
would protect); the lookup is one unique-index read.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.db.base import utcnow
from core.db.models import ApiKey

PREFIX = "sf_"
OWNER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$"
SHOWN_CHARS = 10  # of a key, kept in clear so people can tell their keys apart in `keys list`


class InvalidOwner(ValueError):
    pass


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_owner(owner: str) -> str:
    if not re.fullmatch(OWNER_PATTERN, owner):
        raise InvalidOwner(f"owner `{owner}`: use 1 to 100 letters, digits, `.`, `_`, `@` or `-`")
    return owner


def create(session: Session, owner: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """A new key for `owner`. Returns the row and the secret, which is never stored."""
    secret = PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=str(uuid.uuid4()), owner=check_owner(owner), admin=admin, digest=digest(secret), shown=secret[:SHOWN_CHARS]
    )
    session.add(key)
    session.flush()
    return key, secret


def find(session: Session, secret: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.digest == digest(secret)))


def list_keys(session: Session, owner: str | None = None) -> Sequence[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if owner is not None:
        query = query.where(ApiKey.owner == owner)
    return session.scalars(query).all()


def revoke(session: Session, key_id: str) -> ApiKey | None:
    """Revoke the key with this id (or id prefix of 8 or more characters). None when no key matches."""
    matches = session.scalars(select(ApiKey).where(ApiKey.id.startswith(key_id))).all() if len(key_id) >= 8 else []
    if len(matches) != 1:
        return None
    key = matches[0]
    session.execute(update(ApiKey).where(ApiKey.id == key.id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow()))
    session.refresh(key)
    return key
