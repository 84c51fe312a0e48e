"""The caller of a request, and what of the stored resources it may see."""

from __future__ import annotations

from dataclasses import dataclass

# The owner of everything created while the API runs without keys (the embedded `steadyfit serve`).
LOCAL_OWNER = "local"


@dataclass(frozen=True)
class Principal:
    owner: str
    admin: bool = False

    @property
    def scope(self) -> str | None:
        """The owner whose resources this caller sees; None for an admin, who sees everyone's."""
        return None if self.admin else self.owner

    def sees(self, owner: str) -> bool:
        return self.admin or owner == self.owner


# Without keys every caller is the same local administrator.
KEYLESS = Principal(owner=LOCAL_OWNER, admin=True)
