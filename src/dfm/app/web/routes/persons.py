"""The person behind the project's face: a saved `dfm person`, or more videos of them (a collection)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, UploadFile

from dfm.app.web.deps import JobsDep, ProjectDep, ProjectsDep, RunnerDep, SettingsDep, StateDep
from dfm.app.web.executors import decoder_coverage
from dfm.app.web.projects import display_name, safe_suffix
from dfm.app.web.routes.projects import analysed_track, probe_upload, save_upload
from dfm.app.web.schemas import CoveragePublic, JobSubmitted, PersonRequest, PersonsPublic
from dfm.errors import DfmError
from dfm.jobs import JobSpec

router = APIRouter(tags=["persons"])


@router.get("/api/persons", response_model=PersonsPublic)
def list_persons(state: StateDep) -> PersonsPublic:
    """The saved persons (`dfm person add`) of this workspace."""
    from dfm.pipelines.person import list_persons as saved

    data = []
    for p in saved(state.session.workspace):
        data.append({"name": p.name, "videos": len(p.videos), "frames": int(p.n_frames),
                     "trained": p.decoder_dir.exists()})
    return PersonsPublic(data=data)


@router.put("/api/projects/{id}/person", response_model=CoveragePublic)
def put_person(body: PersonRequest, project: ProjectDep, projects: ProjectsDep, jobs: JobsDep,
               state: StateDep) -> CoveragePublic:
    """Attach a saved person (their trained decoder) or detach (null); returns the decoder's coverage."""
    track = analysed_track(project, jobs, state.session_for(project))
    person = body.person
    if person is not None:
        from dfm.pipelines.person import check_name, person_exists

        try:
            check_name(person)
        except DfmError as e:
            raise HTTPException(status_code=422, detail=str(e)) from None
        if not person_exists(state.session.workspace, person):
            raise HTTPException(status_code=404, detail=f"no person {person!r}; create one with dfm person add")
    try:
        coverage = decoder_coverage(state.session_for(project), track, person=person, collection=project.collection_paths)
    except DfmError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
    projects.update(project.id, person=person)
    return CoveragePublic(**coverage)


@router.get("/api/projects/{id}/person", response_model=CoveragePublic)
def get_person(project: ProjectDep, jobs: JobsDep, state: StateDep) -> CoveragePublic:
    """The decoder the project's edits use now, with its coverage per label."""
    track = analysed_track(project, jobs, state.session_for(project))
    try:
        return CoveragePublic(**decoder_coverage(state.session_for(project), track, person=project.person,
                                                 collection=project.collection_paths))
    except DfmError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None


@router.post("/api/projects/{id}/collection", status_code=202, response_model=JobSubmitted)
def add_collection_video(file: UploadFile, project: ProjectDep, projects: ProjectsDep, runner: RunnerDep,
                         settings: SettingsDep) -> dict[str, Any]:
    """Add another video of the same person (multipart `file`). Analysing it is a job; its result is the
    decoder's coverage per label (GET /api/jobs/{job})."""
    name = display_name(file.filename)
    tmp = save_upload(file, settings.workspace / "uploads")
    probe_upload(tmp, name)
    index = len(project.collection) + 1
    target_name = f"{index:02d}{safe_suffix(file.filename)}"
    target = project.folder / "collection" / target_name
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp.replace(target)
    projects.update(project.id, collection=(*project.collection, target_name))
    status = runner.submit(JobSpec(kind="collection", project=project.id, params={"video": target_name, "name": name}))
    return {"job": status.id}
