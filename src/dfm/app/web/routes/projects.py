"""Projects: upload a video (analysis starts as a job), list, show, delete, the timeline series, the input."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, UploadFile
from fastapi.responses import FileResponse

from dfm.app.web.deps import JobsDep, ProjectDep, ProjectsDep, RunnerDep, SettingsDep, StateDep
from dfm.app.web.projects import Project, check_uploaded_video, display_name, safe_suffix
from dfm.app.web.schemas import (
    AnalysisPublic, AnalysisState, FacePublic, FacesPublic, ProjectPublic, ProjectsPublic, SubjectChoice, VideoPublic,
)
from dfm.errors import InputError
from dfm.jobs import JobSpec, JobStore

router = APIRouter(prefix="/api/projects", tags=["projects"])

MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".mkv": "video/x-matroska",
        ".webm": "video/webm", ".avi": "video/x-msvideo"}


def project_public(project: Project, jobs: JobStore) -> ProjectPublic:
    analysis = None
    if project.analysis_job:
        try:
            s = jobs.status(project.analysis_job)
            analysis = AnalysisState(job=s.id, state=s.state, progress=s.progress, stage=s.stage, message=s.message)
        except KeyError:
            pass
    output = None
    for job_id in reversed(project.renders):
        try:
            if jobs.status(job_id).state == "done":
                output = job_id
                break
        except KeyError:
            continue
    return ProjectPublic(id=project.id, name=project.name, video=VideoPublic(**project.video.__dict__),
                         created=project.created, analysis=analysis, person=project.person,
                         collection=list(project.collection), renders=list(project.renders), output=output,
                         subject=project.subject)


def save_upload(file: UploadFile, folder: Path) -> Path:
    """Copy the upload to a temp file under `folder` (the request's size limit is enforced upstream)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".upload-", suffix=".tmp")
    with open(fd, "wb") as out:
        shutil.copyfileobj(file.file, out, 1 << 20)
    return Path(tmp)


def probe_upload(tmp: Path, name: str):
    try:
        return check_uploaded_video(tmp)
    except InputError as e:
        tmp.unlink(missing_ok=True)
        reason = str(e).replace(f"cannot read {tmp} as a video: ", "").replace(str(tmp), name)
        raise HTTPException(status_code=415, detail=f"{name}: not a video DFM can read ({reason})") from None


@router.post("", status_code=201, response_model=ProjectPublic)
def create_project(file: UploadFile, projects: ProjectsDep, runner: RunnerDep, jobs: JobsDep,
                   settings: SettingsDep) -> ProjectPublic:
    """Upload a video (multipart field `file`); its analysis starts at once as a job."""
    name = display_name(file.filename)
    tmp = save_upload(file, settings.workspace / "uploads")
    facts = probe_upload(tmp, name)
    project = projects.create(name, tmp, safe_suffix(file.filename), facts)
    status = runner.submit(JobSpec(kind="analyze", project=project.id))
    project = projects.update(project.id, analysis_job=status.id)
    return project_public(project, jobs)


@router.get("", response_model=ProjectsPublic)
def list_projects(projects: ProjectsDep, jobs: JobsDep) -> ProjectsPublic:
    """Every project in the workspace, oldest first."""
    data = [project_public(p, jobs) for p in projects.list()]
    return ProjectsPublic(data=data, count=len(data))


@router.get("/{id}", response_model=ProjectPublic)
def get_project(project: ProjectDep, jobs: JobsDep) -> ProjectPublic:
    """One project with the state of its analysis."""
    return project_public(project, jobs)


@router.delete("/{id}", status_code=204)
def delete_project(project: ProjectDep, projects: ProjectsDep, runner: RunnerDep, jobs: JobsDep, state: StateDep) -> None:
    """Delete a project and its files (its running jobs are cancelled first)."""
    for status in jobs.list(project.id):
        if not status.terminal:
            runner.cancel(status.id)
            runner.wait(status.id, timeout=30)
    state.forget(project.id)
    projects.delete(project.id)


def analysed_track(project: Project, jobs: JobStore, session):
    """The project's FaceTrack once its analysis job is done; 409 with the reason before that."""
    if not project.analysis_job:
        raise HTTPException(status_code=409, detail="the video has not been analysed")
    s = jobs.status(project.analysis_job)
    if s.state == "failed":
        raise HTTPException(status_code=409, detail=f"analysis failed: {s.message}")
    if s.state in ("cancelled", "interrupted"):
        raise HTTPException(status_code=409, detail=f"analysis {s.state}: upload the video again")
    if s.state != "done":
        raise HTTPException(status_code=409, detail=f"the video is still being analysed ({100 * s.progress:.0f}%)")
    return session.analyze(project.input)


def _nullable(values) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else round(float(v), 4) for v in values]


@router.get("/{id}/analysis", response_model=AnalysisPublic)
def get_analysis(project: ProjectDep, jobs: JobsDep, state: StateDep) -> AnalysisPublic:
    """Per-frame face found / valence / arousal for the timeline (409 while the analysis runs)."""
    track = analysed_track(project, jobs, state.session_for(project))
    n = track.n_frames
    nan = [float("nan")] * n
    return AnalysisPublic(frames=n, fps=float(track.fps), duration=float(project.video.duration),
                          times=[round(float(t), 4) for t in track.timestamps], valid=[bool(v) for v in track.valid],
                          valence=_nullable(track.valence if track.valence is not None else nan),
                          arousal=_nullable(track.arousal if track.arousal is not None else nan))


@router.get("/{id}/video")
def get_video(project: ProjectDep) -> FileResponse:
    """The input video (HTTP range requests, so the browser can seek)."""
    return FileResponse(project.input, media_type=MIME.get(project.input.suffix, "application/octet-stream"))


@router.get("/{id}/waveform")
def get_waveform(project: ProjectDep, buckets: int = Query(800, ge=10, le=4000)) -> dict:
    """The soundtrack's peak level per time slice, 0..1, for the timeline (zeros without audio)."""
    from dfm.app.web.waveform import audio_peaks

    return {"duration": project.video.duration, "has_audio": project.video.has_audio,
            "peaks": audio_peaks(project.input, project.video.duration, buckets)}


@router.get("/{id}/faces", response_model=FacesPublic)
def get_faces(project: ProjectDep, state: StateDep, t: float = Query(..., ge=0)) -> FacesPublic:
    """The faces seen in the frame shown at `t` seconds (boxes in video pixels, left to right), to click one."""
    if t > project.video.duration:
        raise HTTPException(status_code=422, detail=f"t={t:g} s is past the end of the video ({project.video.duration:.2f} s)")
    boxes = state.session.faces_at(project.input, t)
    return FacesPublic(t=t, subject=project.subject,
                       faces=[FacePublic(x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1) for b in boxes])


@router.put("/{id}/subject", status_code=202, response_model=ProjectPublic)
def put_subject(choice: SubjectChoice, project: ProjectDep, projects: ProjectsDep, runner: RunnerDep, jobs: JobsDep,
                state: StateDep) -> ProjectPublic:
    """Choose which face is edited: `largest`, `leftmost`, `rightmost`, or `2.5s:320,180` (the face under that
    point at that time: a click). The video is analysed again for that person (a new analysis job); 422 when
    the choice is malformed or no face is under the point."""
    from dfm.face.subject import parse_subject
    from dfm.pipelines.subject import subject_reference

    spec = parse_subject(choice.subject)  # InputError -> 422
    if spec.rule == "point":
        subject_reference(project.input, spec, state.session.store.path("face-landmarker"))  # no face there: 422
    if project.analysis_job:
        current = jobs.status(project.analysis_job)
        if not current.terminal:
            runner.cancel(current.id)
            runner.wait(current.id, timeout=30)
    project = projects.update(project.id, subject=str(spec))
    state.forget(project.id)
    status = runner.submit(JobSpec(kind="analyze", project=project.id))
    return project_public(projects.update(project.id, analysis_job=status.id), jobs)
