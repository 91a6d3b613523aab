"""The project's edit list (the CLI's `--edits` JSON) and the live preview of one frame with it."""

from __future__ import annotations

import time
from typing import Any

import cv2
from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.responses import Response

from dfm.app.web.deps import JobsDep, ProjectDep, ProjectsDep, StateDep
from dfm.app.web.renderers import checked_renderer
from dfm.app.web.routes.projects import analysed_track
from dfm.edits import EditList
from dfm.edits.validate import validate_edits
from dfm.errors import DfmError

router = APIRouter(tags=["edits"])

EXAMPLE = {"format": "dfm-edits", "version": 1,
           "edits": [{"start": 0.3, "end": 2.4, "label": "happy", "intensity": "high"}]}


def checked_edits(doc: Any, project, jobs, session, transition_frames: int = 20) -> EditList:
    """Parse an edit-list document and check it against the video, with the CLI's one-line messages
    (422). Before the analysis is done only the document itself can be checked."""
    try:
        edits = EditList.from_json_obj(doc, source="edit list")
    except DfmError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
    try:
        track = analysed_track(project, jobs, session)
    except HTTPException:
        return edits
    try:
        validate_edits(edits, track.timestamps, track.valid, float(track.fps), transition_frames)
    except DfmError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
    return edits


@router.put("/api/projects/{id}/edits")
def put_edits(project: ProjectDep, projects: ProjectsDep, jobs: JobsDep, state: StateDep,
              doc: Any = Body(..., examples=[EXAMPLE])) -> dict[str, Any]:
    """Replace the edit list (JSON of `dfm edit --edits`); 422 with the CLI's message when invalid."""
    edits = checked_edits(doc, project, jobs, state.session_for(project))
    projects.save_edits(project, edits)
    return edits.to_json_obj()


@router.get("/api/projects/{id}/edits")
def get_edits(project: ProjectDep, projects: ProjectsDep) -> dict[str, Any]:
    """The current edit list (an empty one before the first PUT)."""
    try:
        return projects.edits(project).to_json_obj()
    except DfmError as e:
        raise HTTPException(status_code=500, detail=str(e)) from None


@router.get("/api/projects/{id}/preview", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "the frame with the edits applied"}})
def get_preview(project: ProjectDep, projects: ProjectsDep, jobs: JobsDep, state: StateDep,
                t: float = Query(..., ge=0, description="time of the frame, seconds"),
                renderer: str = Query("warp", description="warp | warp+refine | neural (as `dfm preview --renderer`)"),
                preserve_speech: bool | None = Query(None, description="keep the original lip and jaw motion; "
                                                     "unset: when the person talks near the edits (as a render)")
                ) -> Response:
    """PNG of the frame shown at `t` seconds with the current edits (fast once the project is warm); header
    X-DFM-Speech says whether the lip motion is kept (kept) or laid on the closed mouth (rest). 422 with the
    training command (header X-DFM-Error: renderer) for a renderer without its trained model."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    track = analysed_track(project, jobs, state.session_for(project))
    renderer = checked_renderer(renderer, project, track, state.session.workspace)
    edits = projects.edits(project)
    t_lookup = time.perf_counter() - t0
    try:
        result = state.previewer(project).frame(edits, at=t, renderer=renderer, preserve_speech=preserve_speech)
    except DfmError as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
    t = time.perf_counter()
    # stored (level 0): twice as fast to encode as level 1; the size does not matter on localhost
    ok, png = cv2.imencode(".png", cv2.cvtColor(result.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 0])
    if not ok:
        raise HTTPException(status_code=500, detail="could not encode the preview")
    steps = {"lookup": t_lookup, **result.timings, "png": time.perf_counter() - t, "total": time.perf_counter() - t0,
             "cpu": time.process_time() - cpu0}  # the process's CPU time (all its threads): the figure without other load
    timing = ", ".join(f"{k};dur={1000 * v:.1f}" for k, v in steps.items())
    return Response(png.tobytes(), media_type="image/png", headers={
        "X-DFM-Frame": str(result.index), "X-DFM-Weight": f"{result.weight:.3f}", "Server-Timing": timing,
        "X-DFM-Speech": "kept" if result.preserve_speech else "rest",
        "Cache-Control": "no-store"})


@router.get("/api/vocabulary", tags=["edits"])
def vocabulary() -> dict[str, Any]:
    """Labels, intensity levels and blendshape names the edit list accepts (for the page's controls)."""
    from dfm.affect.regions import INTENSITY_LEVELS, LABELS
    from dfm.edits.validate import minimum_edit_frames
    from dfm.face.expressions import EXPRESSION_NAMES
    from dfm.render.registry import RENDERERS

    return {"labels": list(LABELS), "intensities": list(INTENSITY_LEVELS), "blendshapes": list(EXPRESSION_NAMES),
            "renderers": list(RENDERERS),
            "transition_frames": 20, "minimum_edit_frames": minimum_edit_frames(20)}
