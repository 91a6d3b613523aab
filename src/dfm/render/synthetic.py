"""Synthetic scenes for tests and benchmarks: the ICT mesh with a procedural texture, drawn into frames.

The texture is a function of the NEUTRAL model coordinates of each surface point (so it sticks to the
skin when the expression changes): a skin tone with a fine checker and stripes, dark red inside the
mouth, white teeth, white eyeballs with a dark iris. The background is a different procedural pattern.
"""

from __future__ import annotations

import numpy as np

from dfm.face.track import FRONTAL, FaceTrack, project_vertices
from dfm.render.mesh import PART_EYE, PART_MOUTH, RenderMesh
from dfm.render.raster import interpolate, rasterize


def rotation_xyz(pitch_deg: float, yaw_deg: float, roll_deg: float) -> np.ndarray:
    """A head rotation composed with the frontal camera rotation (degrees)."""
    p, y, r = np.deg2rad([pitch_deg, yaw_deg, roll_deg])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return (FRONTAL @ rz @ ry @ rx).astype(np.float32)


def synthetic_track(expressions: np.ndarray, width: int = 640, height: int = 360, scale: float = 14.0,
                    centre: tuple[float, float] | None = None, rotations: np.ndarray | None = None,
                    translations: np.ndarray | None = None, fps: float = 25.0) -> FaceTrack:
    """A FaceTrack with the given per-frame expressions (T, 53), identity 0, fixed or given camera."""
    e = np.asarray(expressions, np.float32)
    t = e.shape[0]
    cx, cy = centre if centre is not None else (width / 2, height * 0.42)
    rot = np.repeat(FRONTAL[None], t, 0) if rotations is None else np.asarray(rotations, np.float32)
    if translations is None:
        # place the nose bridge (model y ~ 2) at the centre; depth offset keeps z positive
        trans = np.tile(np.array([cx, cy + 2.0 * scale, 100.0], np.float32), (t, 1))
    else:
        trans = np.asarray(translations, np.float32)
    return FaceTrack(
        fps=fps, width=width, height=height, timestamps=np.arange(t) / fps,
        valid=np.ones(t, bool), landmarks=np.zeros((t, 478, 3), np.float32),
        blendshapes=e.copy(), rotation=rot, translation=trans,
        scale=np.full(t, scale, np.float32), expression=e.copy(),
        identity=np.zeros(100, np.float32), residual=np.zeros(t, np.float32),
    )


def _texture(n: np.ndarray, part: np.ndarray) -> np.ndarray:
    """RGB float (N, 3) of surface points with neutral coordinates n (N, 3) and part labels."""
    x, y, z = n[:, 0], n[:, 1], n[:, 2]
    checker = ((np.floor(x * 1.5) + np.floor(y * 1.5)) % 2) * 2 - 1
    stripes = np.sin(x * 7.0 + y * 3.0) * np.sin(y * 5.0 - x * 2.0)
    skin = np.stack([200 + 25 * checker + 12 * stripes, 150 + 20 * checker - 10 * stripes,
                     120 + 15 * checker + 8 * stripes], 1)
    out = skin
    mouth = part == PART_MOUTH
    teeth = mouth & (np.abs(y + 3.0) < 1.3) & (z > 8.5)
    out = np.where(mouth[:, None], np.array([90.0, 25.0, 30.0]), out)
    out = np.where(teeth[:, None], np.array([235.0, 230.0, 215.0]) - 20 * (np.floor(x * 2.5) % 2)[:, None], out)
    eye = part == PART_EYE
    r = np.sqrt((np.abs(x) - 3.15) ** 2 + (y - 3.4) ** 2)
    eye_col = np.where((r < 0.6)[:, None], np.array([60.0, 40.0, 30.0]), np.array([240.0, 240.0, 235.0]))
    out = np.where(eye[:, None], eye_col, out)
    return out


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A textured background (H, W, 3) uint8: diagonal stripes and smooth colour."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 6.28, 3)
    img = np.stack([80 + 40 * np.sin((xx + yy) / 9.0 + ph[0]), 90 + 30 * np.sin((xx - 2 * yy) / 13.0 + ph[1]),
                    70 + 35 * np.sin(xx / 17.0 + ph[2])], -1)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_scene(mesh: RenderMesh, neutral: np.ndarray, projected: np.ndarray, height: int, width: int,
                 bg: np.ndarray | None = None) -> np.ndarray:
    """Draw the textured mesh (projected (Vs, 3) frame pixels + depth) over a background -> uint8 RGB.

    neutral: (Vs, 3) neutral model coordinates of the subset's vertices (texture coordinates).
    """
    r = rasterize(np.asarray(projected, np.float32), mesh.triangles, height, width)
    img = (background(height, width) if bg is None else bg).astype(np.float32)
    m = r.triangle >= 0
    n = interpolate(r, neutral.astype(np.float32), mesh.triangles)[m]
    part = mesh.triangle_part[r.triangle[m]]
    col = _texture(n, part)
    # simple shading from the view-facing normal of each triangle
    tri = projected[mesh.triangles[r.triangle[m]]]
    nrm = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    shade = 0.55 + 0.45 * np.abs(nrm[:, 2]) / np.maximum(np.linalg.norm(nrm, axis=1), 1e-6)
    img[m] = col * shade[:, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def scene_frames(mesh: RenderMesh, neutral: np.ndarray, track: FaceTrack) -> list[np.ndarray]:
    """Render every frame of a synthetic track."""
    out = []
    for i in range(track.n_frames):
        v = mesh.vertices(track.expression[i])
        p = project_vertices(v, track.rotation[i], track.translation[i], float(track.scale[i]))
        out.append(render_scene(mesh, neutral, p, track.height, track.width))
    return out
