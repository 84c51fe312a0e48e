"""The job and sweep states as the API's schema shows them: a string with its list of values, written in
place (not a shared `$ref` component), as they were before they became enums, so clients generated from
the schema keep their types."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import WithJsonSchema

from core.states import JobStatus, Priority, SweepStatus


def _inline(states: type[StrEnum], title: str = "Status") -> WithJsonSchema:
    # Every field of the state types is called `status`: the title is the one pydantic gave them.
    return WithJsonSchema({"type": "string", "enum": [state.value for state in states], "title": title})


JobStatusValue = Annotated[JobStatus, _inline(JobStatus)]
SweepStatusValue = Annotated[SweepStatus, _inline(SweepStatus)]
PriorityValue = Annotated[Priority, _inline(Priority, "Priority")]
