"""A job's or a sweep's project and tags: how people group and find their runs. Field names here are a
public contract.

A project is a short slug (`vision`, `churn-2027`); tags are a small map of slug keys to short values
(`{"team": "red"}`). `GET /v1/jobs?tag=team:red` names a tag as `key:value`, which is why a key never
holds a `:`.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from core.spec.job import SpecModel

DEFAULT_PROJECT = "default"
PROJECT_LENGTH = 64
SLUG = r"^[a-z0-9][a-z0-9_.-]*$"
MAX_TAGS = 16
TAG_KEY_LENGTH = 64
TAG_VALUE_LENGTH = 128

PROJECT_FORMAT = (
    f"lower-case letters, digits, `_`, `-` and `.`, starting with a letter or digit; at most {PROJECT_LENGTH} "
    "characters"
)
Project = Annotated[str, StringConstraints(min_length=1, max_length=PROJECT_LENGTH, pattern=SLUG)]
TagKey = Annotated[str, StringConstraints(min_length=1, max_length=TAG_KEY_LENGTH, pattern=r"^[A-Za-z0-9_.-]+$")]
# Printable: a tag is shown in lists and typed on command lines.
TagValue = Annotated[str, StringConstraints(max_length=TAG_VALUE_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")]
Tags = Annotated[dict[TagKey, TagValue], Field(max_length=MAX_TAGS)]


class Labels(SpecModel):
    """The project and tags given beside a spec."""

    project: Project = Field(
        DEFAULT_PROJECT,
        description=f"The project it belongs to (`default` unless given): {PROJECT_FORMAT}.",
        examples=["vision"],
    )
    tags: Tags = Field(
        default_factory=dict,
        description=f"Tags to find it by (none unless given): at most {MAX_TAGS}, keys of letters, digits, `_`, "
        f"`-` and `.` (at most {TAG_KEY_LENGTH} characters), printable values (at most {TAG_VALUE_LENGTH}).",
        examples=[{"team": "red", "stage": "tuning"}],
    )

    @property
    def labels(self) -> Labels:
        """Only the project and tags (of a `JobCreate` or a `SweepCreate`)."""
        return Labels(project=self.project, tags=self.tags)


LABEL_FIELDS = frozenset(Labels.model_fields)
