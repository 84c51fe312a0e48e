"""HTTP routes for /v1/me (who am I, what are my limits) and /v1/keys (admins manage keys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, status

from core.errors import NotFound
from core.jobs.cost import cost_bounds
from core.tenants import keys
from core.tenants.limits import limits_for
from service.deps import SessionDep, SettingsDep
from service.errors import Problem
from service.tenants.deps import AdminDep, PrincipalDep
from service.tenants.schemas import Identity, KeyCreate, KeyCreated, KeyList, KeyRead, UploadBounds

router = APIRouter(prefix="/v1", tags=["keys"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No key with this id."}}
KeyId = Annotated[str, Path(description="The key's `id`, as GET /v1/keys lists it (not the secret).")]
EXAMPLE_KEY = {"owner": "alice", "admin": False}


@router.get("/me", operation_id="get_identity")
def get_identity(session: SessionDep, settings: SettingsDep, principal: PrincipalDep) -> Identity:
    """The owner this request acts for, whether it is an admin, and the limits and cost bounds that apply to it."""
    limits = limits_for(session, settings, principal.owner)
    uploads = UploadBounds.model_validate(settings, from_attributes=True)
    return Identity(
        owner=principal.owner, admin=principal.admin, limits=limits, bounds=cost_bounds(settings), uploads=uploads
    )


@router.get("/keys", operation_id="list_keys")
def list_keys(session: SessionDep, _admin: AdminDep) -> KeyList:
    """Every API key (admins only); secrets are never stored, so never listed."""
    return KeyList(items=[KeyRead.model_validate(key) for key in keys.list_keys(session)])


@router.post("/keys", status_code=status.HTTP_201_CREATED, operation_id="create_key")
def create_key(
    body: Annotated[KeyCreate, Body(openapi_examples={"alice": {"value": EXAMPLE_KEY}})],
    session: SessionDep,
    _admin: AdminDep,
) -> KeyCreated:
    """Create a key (admins only). The response holds the secret; it is not shown again."""
    key, secret = keys.create(session, body.owner, admin=body.admin)
    return KeyCreated(**KeyRead.model_validate(key).model_dump(), key=secret)


@router.post("/keys/{key_id}/revoke", operation_id="revoke_key", responses=NOT_FOUND)
def revoke_key(key_id: KeyId, session: SessionDep, _admin: AdminDep) -> KeyRead:
    """Revoke a key (admins only): requests with it are a 403 from then on (within `key_cache_seconds`)."""
    key = keys.revoke(session, key_id)
    if key is None:
        raise NotFound(f"no key `{key_id}`")
    return KeyRead.model_validate(key)
