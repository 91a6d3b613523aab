"""Render jobs and job status: submit, poll, follow (server-sent events), cancel; download the result."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse

from dfm.app.web.deps import JobsDep, ProjectDep, ProjectsDep, RunnerDep, StateDep
from dfm.app.web.renderers import checked_renderer
from dfm.app.web.routes.edits import checked_edits
from dfm.app.web.routes.projects import analysed_track
from dfm.app.web.schemas import JobPublic, JobSubmitted, RenderRequest
from dfm.errors import InputError
from dfm.jobs import JobSpec, JobStore

router = APIRouter(tags=["jobs"])
EVENT_POLL_S = 0.2


def job_status(jobs: JobStore, job_id: str):
    try:
        return jobs.status(job_id)
    except (KeyError, InputError):
        raise HTTPException(status_code=404, detail=f"no job {job_id!r}") from None


@router.post("/api/projects/{id}/render", status_code=202, response_model=JobSubmitted)
def submit_render(project: ProjectDep, projects: ProjectsDep, jobs: JobsDep, runner: RunnerDep, state: StateDep,
                  body: RenderRequest | None = Body(default=None)) -> dict[str, Any]:
    """Reenact the video with the current edits (`dfm edit`'s job); 202 with the job id. A renderer without
    its trained model is refused before the job is queued (422, the command that trains it)."""
    track = analysed_track(project, jobs, state.session_for(project))
    body = body or RenderRequest()
    renderer = checked_renderer(body.renderer, project, track, state.session.workspace)
    edits = checked_edits(projects.edits(project).to_json_obj(), project, jobs, state.session_for(project))
    if len(edits) == 0:
        raise HTTPException(status_code=422, detail="no edits: add an edit on the timeline first")
    status = runner.submit(JobSpec(kind="render", project=project.id,
                                   params={"edits": edits.to_json_obj(), "seed": body.seed, "renderer": renderer,
                                           "preserve_speech": body.preserve_speech}))
    projects.add_render(project.id, status.id)
    return {"job": status.id}


@router.get("/api/projects/{id}/jobs", response_model=list[JobPublic])
def project_jobs(project: ProjectDep, jobs: JobsDep) -> list[JobPublic]:
    """The project's job history, oldest first."""
    return [JobPublic.of(s) for s in jobs.list(project.id)]


@router.get("/api/jobs/{job}", response_model=JobPublic)
def get_job(job: str, jobs: JobsDep) -> JobPublic:
    """State (queued|running|done|failed|cancelled|interrupted), progress 0..1, stage and message."""
    return JobPublic.of(job_status(jobs, job))


@router.get("/api/jobs/{job}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "the job's status on every change"}})
async def job_events(job: str, jobs: JobsDep, request: Request) -> StreamingResponse:
    """Server-sent events: the job's status (as GET /api/jobs/{job}) on every change, until it ends."""
    job_status(jobs, job)

    async def stream():
        last = None
        while True:
            status = jobs.status(job)
            text = JobPublic.of(status).model_dump_json()
            if text != last:
                yield f"event: status\ndata: {text}\n\n"
                last = text
            if status.terminal or await request.is_disconnected():
                return
            await asyncio.sleep(EVENT_POLL_S)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.delete("/api/jobs/{job}", response_model=JobPublic)
def cancel_job(job: str, jobs: JobsDep, runner: RunnerDep) -> JobPublic:
    """Cancel a queued or running job (a running one stops at its next frame; poll until `cancelled`)."""
    job_status(jobs, job)
    return JobPublic.of(runner.cancel(job))


def _latest_output(project, jobs: JobStore):
    for job_id in reversed(project.renders):
        try:
            status = jobs.status(job_id)
        except KeyError:
            continue
        if status.state == "done" and status.result:
            return project.render_dir(job_id), status.result
    raise HTTPException(status_code=404, detail="no finished result yet: press Reenact first")


@router.get("/api/projects/{id}/output")
def get_output(project: ProjectDep, jobs: JobsDep) -> FileResponse:
    """The latest manipulated MP4 (range requests)."""
    folder, result = _latest_output(project, jobs)
    stem = project.name.rsplit(".", 1)[0]
    return FileResponse(folder / result["output"], media_type="video/mp4", filename=f"{stem}.dfm.mp4",
                        content_disposition_type="inline")


@router.get("/api/projects/{id}/output/sidecar")
def get_output_sidecar(project: ProjectDep, jobs: JobsDep) -> FileResponse:
    """The latest result's `.dfm.json` disclosure (edits, input hash, versions)."""
    folder, result = _latest_output(project, jobs)
    stem = project.name.rsplit(".", 1)[0]
    return FileResponse(folder / result["sidecar"], media_type="application/json", filename=f"{stem}.dfm.json")
