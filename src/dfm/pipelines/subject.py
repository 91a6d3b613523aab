"""The subject of a job, at the pipeline level: resolve a `SubjectSpec` on a video, list the faces at a
time (for a click-to-choose interface), and turn the tracker's subject report into job-report lines.

    faces = faces_at("two.mp4", 2.5, landmarker)        # [FaceBox, ...] at 2.5 s
    spec = SubjectSpec.at(2.5, *faces[1].centre)         # "the second face", as --subject 2.5s:X,Y
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from dfm.errors import InputError
from dfm.face.subject import FaceBox, FaceSignature, SubjectSpec, face_signature, pick_by_rule
from dfm.face.tracking import detect_faces


def faces_at(video: str | os.PathLike, seconds: float, landmarker: str | os.PathLike) -> list[FaceBox]:
    """The faces MediaPipe sees in the frame shown at `seconds`, left to right."""
    _, image = _frame_at(Path(video), seconds=seconds)
    boxes = [FaceBox.of(l) for l in detect_faces(image, landmarker)]
    return sorted(boxes, key=lambda b: b.centre[0])


def subject_reference(video: str | os.PathLike, spec: SubjectSpec,
                      landmarker: str | os.PathLike) -> tuple[FaceSignature | None, int | None]:
    """(signature, frame) of the face a point spec names, measured before tracking; (None, None) for the
    rules (they pick at the subject's first appearance). InputError when no face is under the point."""
    if spec.rule != "point":
        return None, None
    index, image = _frame_at(Path(video), seconds=spec.seconds, frame=spec.frame)
    faces = detect_faces(image, landmarker)
    boxes = [FaceBox.of(l) for l in faces]
    k = pick_by_rule(boxes, spec)
    if k is None:
        seen = "; ".join(f"({b.x0:.0f},{b.y0:.0f})-({b.x1:.0f},{b.y1:.0f})" for b in boxes) or "none"
        raise InputError(f"--subject {spec}: no face at ({spec.point[0]:g}, {spec.point[1]:g}) in frame {index}; "
                         f"faces there: {seen}")
    return face_signature(image, faces[k]), index


def subject_warnings(subject: dict[str, Any] | None) -> list[str]:
    """Job-report warnings: each change to another person. (Edits over frames without the subject are
    refused before this, by dfm.edits.validate, as frames without a tracked face.)"""
    return [f"another person takes the subject's place at frame {c['frame']} ({c['time']:.2f} s): their frames "
            f"are not the subject's ({subject['spec']}) and are left unedited"
            for c in (subject or {}).get("person_changes", []) if c["kind"] == "to_other"]


def _frame_at(video: Path, seconds: float | None = None, frame: int | None = None) -> tuple[int, np.ndarray]:
    from dfm.io.video import frame_timestamps, read_frame

    timestamps = frame_timestamps(video)
    if frame is None:
        spec = SubjectSpec("point", seconds=float(seconds), point=(0.0, 0.0))
    else:
        spec = SubjectSpec("point", frame=int(frame), point=(0.0, 0.0))
    index = spec.frame_index(np.asarray(timestamps))
    return index, np.asarray(read_frame(video, index).image)
