"""Request dependencies as Annotated aliases (tests swap them with app.dependency_overrides)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from dfm.app.web.config import Settings
from dfm.app.web.projects import Project, ProjectStore, UnknownProject
from dfm.app.web.state import WebState
from dfm.jobs import JobStore, LocalRunner


def get_state(request: Request) -> WebState:
    return request.app.state.web


StateDep = Annotated[WebState, Depends(get_state)]


def get_settings(state: StateDep) -> Settings:
    return state.settings


def get_session(state: StateDep) -> Any:
    return state.session


def get_projects(state: StateDep) -> ProjectStore:
    return state.projects


def get_jobs(state: StateDep) -> JobStore:
    return state.jobs


def get_runner(state: StateDep) -> LocalRunner:
    return state.runner


SettingsDep = Annotated[Settings, Depends(get_settings)]
DfmSessionDep = Annotated[Any, Depends(get_session)]
ProjectsDep = Annotated[ProjectStore, Depends(get_projects)]
JobsDep = Annotated[JobStore, Depends(get_jobs)]
RunnerDep = Annotated[LocalRunner, Depends(get_runner)]


def get_project(id: str, projects: ProjectsDep) -> Project:
    """The project named by the path's {id}; 404 for an unknown or malformed id (never a path)."""
    try:
        return projects.get(id)
    except UnknownProject as e:
        raise HTTPException(status_code=404, detail=str(e)) from None


ProjectDep = Annotated[Project, Depends(get_project)]
