"""Rendering: the warp renderer (default, training-free) — see DESIGN "Renderers", item 1.

    pool = FramePool.build(track, frames, allowed_indices, RenderMesh.build(model, track.identity))
    renderer = WarpRenderer(model, track, pool)
    for out in renderer.render_video(frames, targets, weights): ...
    renderer.report.summary()
"""

from dfm.render.mesh import RenderMesh
from dfm.render.pool import FramePool, PoolFrame
from dfm.render.renderer import FrameReport, RenderParams, RenderReport, WarpRenderer
from dfm.render.temporal import edit_jitter, face_jitter

__all__ = ["FramePool", "FrameReport", "PoolFrame", "RenderMesh", "RenderParams", "RenderReport", "WarpRenderer",
           "edit_jitter", "face_jitter"]
