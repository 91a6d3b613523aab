"""Which renderers (`dfm edit --renderer`) this project can use now; the page's renderer control."""

from __future__ import annotations

from fastapi import APIRouter

from dfm.app.web.deps import JobsDep, ProjectDep, StateDep
from dfm.app.web.renderers import renderer_states
from dfm.app.web.routes.projects import analysed_track
from dfm.app.web.schemas import RendererPublic, RenderersPublic

router = APIRouter(tags=["edits"])


@router.get("/api/projects/{id}/renderers", response_model=RenderersPublic)
def get_renderers(project: ProjectDep, jobs: JobsDep, state: StateDep) -> RenderersPublic:
    """Every renderer, whether this video has its trained model, and if not the command that trains it
    (409 while the analysis runs: the models sit beside the video's analysis)."""
    track = analysed_track(project, jobs, state.session_for(project))
    return RenderersPublic(data=[RendererPublic(name=r.name, trained=r.trained, message=r.message)
                                 for r in renderer_states(project, track, state.session.workspace)])
