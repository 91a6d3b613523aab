"""Projects of the web tool, one folder each under WORKSPACE/projects/<id>/:

    project.json      name, video facts, analysis job, person/collection, render jobs
    input.<ext>       the uploaded video (never modified)
    edits.json        the current edit list (the CLI's `--edits` format)
    collection/       more videos of the same person
    renders/<job>/    output.mp4 + output.dfm.json of each render job (what `dfm edit` writes)

Ids are 12 hex digits; anything else is refused before a path is built, so no request can name a file
outside the workspace.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import threading
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dfm.edits import EditList
from dfm.errors import DfmError, InputError
from dfm.io.files import atomic_write_text

PROJECT_ID = re.compile(r"^[0-9a-f]{12}$")
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi"}  # kept for the browser's MIME type only


class UnknownProject(DfmError):
    pass


@dataclass(frozen=True)
class VideoFacts:
    frames: int
    fps: float
    width: int
    height: int
    duration: float
    has_audio: bool


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    folder: Path
    input_name: str
    video: VideoFacts
    created: float
    analysis_job: str | None = None
    person: str | None = None
    collection: tuple[str, ...] = ()  # file names inside collection/
    renders: tuple[str, ...] = ()  # render job ids, oldest first
    subject: str = "largest"  # which face is edited (dfm.face.subject spec text, as the CLI's --subject)

    @property
    def input(self) -> Path:
        return self.folder / self.input_name

    @property
    def edits_path(self) -> Path:
        return self.folder / "edits.json"

    @property
    def collection_paths(self) -> list[Path]:
        return [self.folder / "collection" / n for n in self.collection]

    def render_dir(self, job_id: str) -> Path:
        return self.folder / "renders" / job_id

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "input": self.input_name, "video": asdict(self.video),
                "created": self.created, "analysis_job": self.analysis_job, "person": self.person,
                "collection": list(self.collection), "renders": list(self.renders), "subject": self.subject}

    @classmethod
    def from_json(cls, d: dict[str, Any], folder: Path) -> "Project":
        return cls(id=d["id"], name=d["name"], folder=folder, input_name=d["input"], video=VideoFacts(**d["video"]),
                   created=float(d["created"]), analysis_job=d.get("analysis_job"), person=d.get("person"),
                   collection=tuple(d.get("collection", ())), renders=tuple(d.get("renders", ())),
                   subject=d.get("subject", "largest"))


def safe_suffix(filename: str | None) -> str:
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in VIDEO_SUFFIXES else ".mp4"


def display_name(filename: str | None) -> str:
    """The upload's file name for display: no folders, printable, at most 120 characters."""
    name = Path((filename or "video").replace("\\", "/")).name
    name = "".join(ch for ch in name if ch.isprintable()).strip() or "video"
    return name[:120]


class ProjectStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def folder(self, project_id: str) -> Path:
        if not isinstance(project_id, str) or not PROJECT_ID.fullmatch(project_id):
            raise UnknownProject(f"no project {project_id!r}")
        return self.root / project_id

    def get(self, project_id: str) -> Project:
        folder = self.folder(project_id)
        try:
            return Project.from_json(json.loads((folder / "project.json").read_text()), folder)
        except FileNotFoundError:
            raise UnknownProject(f"no project {project_id!r}") from None

    def list(self) -> list[Project]:
        out = []
        for folder in sorted(self.root.iterdir()):
            if PROJECT_ID.fullmatch(folder.name) and (folder / "project.json").exists():
                try:
                    out.append(self.get(folder.name))
                except (ValueError, KeyError, TypeError, OSError):
                    continue  # a damaged record is not shown
        return sorted(out, key=lambda p: p.created)

    def create(self, name: str, upload: Path, suffix: str, facts: VideoFacts) -> Project:
        """A new project owning `upload` (moved into its folder)."""
        project_id = secrets.token_hex(6)
        folder = self.root / project_id
        folder.mkdir(parents=True)
        input_name = "input" + suffix
        shutil.move(str(upload), folder / input_name)
        project = Project(id=project_id, name=name, folder=folder, input_name=input_name, video=facts,
                          created=time.time())
        self.save(project)
        return project

    def save(self, project: Project) -> Project:
        atomic_write_text(project.folder / "project.json", json.dumps(project.to_json(), indent=2))
        return project

    def update(self, project_id: str, **changes: Any) -> Project:
        with self._lock:
            return self.save(replace(self.get(project_id), **changes))

    def add_render(self, project_id: str, job_id: str) -> Project:
        with self._lock:
            p = self.get(project_id)
            return self.save(replace(p, renders=(*p.renders, job_id)))

    def delete(self, project_id: str) -> None:
        folder = self.get(project_id).folder
        trash = folder.with_name(f".{folder.name}.deleted")
        folder.rename(trash)  # gone for readers at once; the files go after
        shutil.rmtree(trash, ignore_errors=True)

    def edits(self, project: Project) -> EditList:
        if not project.edits_path.exists():
            return EditList([])
        return EditList.from_json(project.edits_path.read_text(), source="saved edit list")

    def save_edits(self, project: Project, edits: EditList) -> None:
        atomic_write_text(project.edits_path, edits.to_json())


def check_uploaded_video(path: Path) -> VideoFacts:
    """Probe an upload (by its content, not its name); InputError when it is not a video with frames."""
    from dfm.io.video import probe_video

    try:
        info = probe_video(path)
    except InputError:
        raise
    except Exception as e:  # noqa: BLE001 - whatever the demuxer says, it is not a usable video
        raise InputError(f"not a video file ({type(e).__name__})") from None
    if info.n_frames <= 0:
        raise InputError("the file has no video frames")
    return VideoFacts(frames=int(info.n_frames), fps=float(info.fps), width=int(info.width), height=int(info.height),
                      duration=float(info.duration), has_audio=bool(info.has_audio))
