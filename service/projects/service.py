"""What the projects API does. A project exists while a job is in it; there is nothing to create."""

from __future__ import annotations

from sqlalchemy.orm import Session

from core.jobs import repository
from core.tenants.principal import Principal
from service.projects.schemas import ProjectList, ProjectRead


def list_projects(session: Session, principal: Principal) -> ProjectList:
    counts = repository.project_counts(session, principal.scope)
    return ProjectList(items=[ProjectRead(project=project, jobs=jobs) for project, jobs in counts])
