"""Before/after contact sheets: pick frames of the input and the output and lay them out in one PNG."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from dfm.io.files import atomic_output


def before_after_sheet(before: str | os.PathLike, after: str | os.PathLike, indices: Sequence[int],
                       path: str | os.PathLike, labels: Sequence[str] | None = None, crop: tuple[int, int, int, int] | None = None,
                       scale: float = 1.0) -> Path:
    """Rows of [before | after] for the given frame indices, at full size by default (to inspect seams)."""
    from dfm.io.video import read_frames_at

    a = read_frames_at(before, list(indices))
    b = read_frames_at(after, list(indices))
    rows = []
    for k, (fa, fb) in enumerate(zip(a, b)):
        ia, ib = np.asarray(fa.image), np.asarray(fb.image)
        if crop is not None:
            x0, y0, x1, y1 = crop
            ia, ib = ia[y0:y1, x0:x1], ib[y0:y1, x0:x1]
        row = np.concatenate([ia, np.full((ia.shape[0], 4, 3), 255, np.uint8), ib], axis=1)
        if scale != 1.0:
            row = cv2.resize(row, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        text = f"frame {indices[k]}" + (f"  {labels[k]}" if labels else "") + "   before | after"
        cv2.putText(row, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2, cv2.LINE_AA)
        cv2.putText(row, text, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    path = Path(path)
    with atomic_output(path, suffix=".png") as tmp:
        cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return path
