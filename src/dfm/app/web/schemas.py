"""What the API sends and receives (pydantic); conversions from the core's dataclasses, no numpy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

JobStateName = Literal["queued", "running", "done", "failed", "cancelled", "interrupted"]


class VideoPublic(BaseModel):
    frames: int
    fps: float
    width: int
    height: int
    duration: float
    has_audio: bool


class JobPublic(BaseModel):
    id: str
    kind: str
    project: str
    state: JobStateName
    progress: float = Field(ge=0, le=1)
    stage: str
    message: str
    result: dict[str, Any] | None = None
    created: float
    started: float | None = None
    finished: float | None = None

    @classmethod
    def of(cls, status) -> "JobPublic":
        return cls(**status.to_dict())


class JobSubmitted(BaseModel):
    job: str


class AnalysisState(BaseModel):
    job: str | None
    state: JobStateName | None
    progress: float
    stage: str
    message: str


class ProjectPublic(BaseModel):
    id: str
    name: str
    video: VideoPublic
    created: float
    analysis: AnalysisState | None = None
    person: str | None = None
    collection: list[str] = []
    renders: list[str] = []
    output: str | None = None  # the latest finished render job, served at .../output
    subject: str = "largest"  # which face is edited (the CLI's --subject)


class SubjectChoice(BaseModel):
    subject: str  # largest | leftmost | rightmost | SECONDSs:X,Y (the face under a click at that time)


class FacePublic(BaseModel):
    x0: float
    y0: float
    x1: float
    y1: float


class FacesPublic(BaseModel):
    t: float
    subject: str
    faces: list[FacePublic]  # left to right, in video pixels


class ProjectsPublic(BaseModel):
    data: list[ProjectPublic]
    count: int


class AnalysisPublic(BaseModel):
    """Per-frame series for the timeline (null where there is no estimate)."""

    frames: int
    fps: float
    duration: float
    times: list[float]
    valid: list[bool]
    valence: list[float | None]
    arousal: list[float | None]


class PersonRequest(BaseModel):
    person: str | None = Field(description="name of an existing `dfm person`, or null to detach")


class CoveragePublic(BaseModel):
    source: str
    coverage: list[str]
    labels: list[dict[str, Any]] = []
    warnings: list[str] = []


class PersonsPublic(BaseModel):
    data: list[dict[str, Any]]


class RenderRequest(BaseModel):
    seed: int = 0
    renderer: str = Field(default="warp", description="warp | warp+refine | neural (as `dfm edit --renderer`)")
    preserve_speech: bool | None = Field(default=None, description="keep the original lip and jaw motion "
                                         "(`dfm edit --preserve-speech`); null: when the person talks near the edits")


class RendererPublic(BaseModel):
    name: str
    trained: bool  # warp needs no training: always true
    message: str | None = None  # why it cannot be used yet: the command that trains it


class RenderersPublic(BaseModel):
    data: list[RendererPublic]


class ErrorPublic(BaseModel):
    detail: str
