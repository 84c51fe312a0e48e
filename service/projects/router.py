"""HTTP routes for /v1/projects."""

from __future__ import annotations

from fastapi import APIRouter

from service.deps import SessionDep
from service.projects import service
from service.projects.schemas import ProjectList
from service.tenants.deps import PrincipalDep

router = APIRouter(prefix="/v1/projects", tags=["projects"])


@router.get("", operation_id="list_projects")
def list_projects(session: SessionDep, principal: PrincipalDep) -> ProjectList:
    """Your projects (an admin: everyone's), each with its number of jobs: what `GET /v1/jobs?project=` and
    the dashboard's project selector choose from."""
    return service.list_projects(session, principal)
