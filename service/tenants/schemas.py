"""What the keys and identity routes read and return."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from core.jobs.cost import CostBounds
from core.tenants.keys import OWNER_PATTERN
from core.tenants.limits import Limits


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    owner: str = Field(pattern=OWNER_PATTERN, description="Who the key acts for; what it creates belongs to them.")
    admin: bool = Field(False, description="An admin's key sees and manages every owner's resources and keys.")


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The key's id, to revoke it with; not the secret.")
    owner: str = Field(description="Who the key acts for.")
    admin: bool = Field(description="Whether it is an admin's key.")
    shown: str = Field(description="The key's first characters, to tell keys apart; the rest is never stored.")
    created_at: datetime = Field(description="When the key was created.")
    revoked_at: datetime | None = Field(description="When it was revoked; null while it works.")


class KeyCreated(KeyRead):
    key: str = Field(description="The secret: shown this once, send it as `Authorization: Bearer <key>`.")


class KeyList(BaseModel):
    items: list[KeyRead] = Field(description="Every key, revoked ones included.")


class UploadBounds(BaseModel):
    """The server's bounds on one upload or prediction, the same for every owner."""

    max_upload_columns: int = Field(description="Columns of an uploaded table.")
    max_categories: int = Field(description="Distinct values of a text column, and classes of a target.")
    max_encoded_bytes: int = Field(description="An upload decoded (rows x features x 4), or an archive expanded.")
    max_image_pixels: int = Field(description="Width x height of one image in an uploaded zip, before decoding.")
    max_predict_rows: int = Field(description="Rows of one prediction request.")


class Identity(BaseModel):
    owner: str = Field(description="Who this key acts for (`local` when the server runs without keys).")
    admin: bool = Field(description="Whether this key is an admin's: it sees and manages every owner's resources.")
    limits: Limits = Field(description="The limits that apply to this owner, overrides included.")
    bounds: CostBounds = Field(
        description="The server's bounds on what one job may cost (data bytes, activation bytes, wall seconds); "
        "a spec past one is a 422 naming it."
    )
    uploads: UploadBounds = Field(description="The server's bounds on uploads (data sets, models) and predictions.")
