"""The job and sweep states as the API's schema shows them: a string with its list of values, written in
place (not a shared `$ref` component), as they were before they became enums, so clients generated from
the schema keep their types."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import WithJsonSchema

from core.states import JobStatus, SweepStatus


def _inline(states: type[StrEnum]) -> WithJsonSchema:
    # Every field of these types is called `status`: the title is the one pydantic gave them.
    return WithJsonSchema({"type": "string", "enum": [state.value for state in states], "title": "Status"})


JobStatusValue = Annotated[JobStatus, _inline(JobStatus)]
SweepStatusValue = Annotated[SweepStatus, _inline(SweepStatus)]
