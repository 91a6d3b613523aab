"""The paper's self-reenactment protocol (§4.2, Table 1) for the warp renderer.

Split: the first `split` (default 70 %) of the frames TRAIN, the rest TEST. The decoder learns from the
training frames' (valence, arousal, expression) triples; the renderer's retrieval pool holds training
frames only; and the frame the renderer edits for a test frame is a training frame too. No test-frame
PIXEL ever reaches the renderer: every frame read goes through `TrainingFrames`, which raises
`ProtocolViolation` for any other index (the test suite also poisons the test frames and checks that
the output does not change). The test frame's fitted geometry (head pose, expression, eye shapes) and
its affect estimate are the driving signal, as in the paper. (The analysis stage fits one identity per
video from all its frames, test frames included; that shape vector is geometry, not pixels.)

Source frame of test frame T (rule): among the valid training frames, the one whose fitted head rotation
is closest to T's (geodesic angle between the rotations); frames within `pose_tie_deg` (1 degree) of
the closest one count as ties, and among them the one whose fitted expression is closest (L2 over the 53
coefficients) to the setting's target expression wins.

Rendering test frame T from source S with target expression X (settings A and B of the paper):

1. Re-pose (`repose`): S's pixels are moved to T's camera with a dense backward flow between S's mesh
   (S's expression, S's camera) and the mesh under T's camera with S's expression but T's eye shapes
   (eyeBlink/eyeLook/eyeSquint/eyeWide: the renderer takes eyes and gaze from the frame it edits, and in
   the real task that frame shows the person's own eyes). The result is a "virtual original frame": T's
   head pose and eyes, S's mouth and brows, S's pixels only.
2. Edit (`WarpRenderer.render_frame`, weight 1): the renderer edits that virtual frame from its geometry
   (T's camera, the expression of step 1) to X, retrieving mouth/cheek/brow appearance from the
   training-frame pool like in a real edit. The renderer has no call that takes the geometry of an image
   from outside its track, so the evaluation gives it its own copy of the track and of its smoothed
   geometry in which row T holds the virtual frame's expression (see `_GeometryOverride`; the
   occlusion check reads the raw track row, the warp the smoothed one).
   A: X = the expression fitted on T. B: X = the decoder's expression for the affect estimate (V, A) of T.

Baselines reported beside it (same crops and masks): `repose` (step 1 only: S re-posed, its own
expression) and `warp_A` / `warp_B` (a single flow from S straight to (T's camera, X): pure warping, no
retrieval, no mouth fill). They show what the renderer's appearance stage adds.

Metrics (`dfm.eval.metrics`) on 256x256 crops placed from T's landmarks, masks from the NMFC image of T's
fitted mesh (raw fit, not smoothed) in crop coordinates; crop pixels outside the frame are left out.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np

from dfm.errors import DfmError
from dfm.eval.metrics import CROP_MARGIN, CROP_SIZE, CropBox, frame_metrics, pixel_error, summarise
from dfm.face.expressions import EXPRESSION_NAMES
from dfm.face.model import FaceModel
from dfm.face.nmfc import render_nmfc_projected
from dfm.face.track import FaceTrack, project_vertices
from dfm.render.flow import compute_flow
from dfm.render.mesh import RenderMesh
from dfm.render.pool import FramePool
from dfm.render.renderer import EYE_SHAPES, WarpRenderer
from dfm.render.retrieval import rotation_angle_deg
from dfm.render.temporal import TrackGeometry
from dfm.render.warp import paste, warp_crop

FrameReader = Callable[[int], np.ndarray]
SETTINGS = ("A", "B")
VARIANTS = ("A", "B", "warp_A", "warp_B", "repose")
EYE_INDEX = np.array([EXPRESSION_NAMES.index(n) for n in EYE_SHAPES], np.int64)


class ProtocolViolation(RuntimeError):
    """The renderer asked for the pixels of a frame outside the training part (a bug, never a user error)."""


@dataclass(frozen=True)
class ProtocolConfig:
    """Settings of the self-reenactment protocol."""

    split: float = 0.7  # share of the frames (from the start) that train
    pose_tie_deg: float = 1.0  # source frames within this angle of the closest pose are ties
    crop_size: int = CROP_SIZE
    crop_margin: float = CROP_MARGIN
    decoder: str = "fast"  # PersonDecoder data-decoder preset for setting B
    pool_max_frames: int | None = 240  # FramePool.build max_frames
    # WarpRenderer keyword parameters. The occlusion check is off: it scores the image it is given against
    # the appearance statistics of real frames, and on the re-posed (resampled) source frames it flags
    # false occluders (up to 41 % of its sample points on a clean GRID clip), whose pixels then stay unedited.
    renderer: dict[str, Any] = field(default_factory=lambda: {"occlusion": False})
    heatmap_frames: int = 4  # test frames (evenly spaced) whose crops are kept for heat maps
    baselines: bool = True  # also measure repose / warp_A / warp_B
    repose_margin: float | None = None  # fade-out margin of the re-posing flow (face sizes); None = the renderer's


class TrainingFrames:
    """A frame reader that serves training frames only; any other index raises ProtocolViolation.

    reader: index -> (H, W, 3) uint8 RGB (e.g. `VideoTrainingFrames`, or a list's __getitem__ in tests).
    `requested` records every index asked for (tests check it).
    """

    def __init__(self, reader: FrameReader, allowed: np.ndarray):
        self._reader = reader
        self._allowed = frozenset(int(i) for i in np.asarray(allowed).ravel())
        self.requested: list[int] = []

    def __call__(self, index: int) -> np.ndarray:
        i = int(index)
        self.requested.append(i)
        if i not in self._allowed:
            raise ProtocolViolation(f"frame {i} is not a training frame: the renderer may not see its pixels")
        return self._reader(i)


class VideoTrainingFrames:
    """Decodes frames [0, n_train) of a video once (streamed) and serves them from memory.

    Memory: n_train decoded frames (e.g. 330 x 640x360 RGB = 0.23 GB for the Pexels clip).
    """

    def __init__(self, path: Any, n_train: int):
        from dfm.io.video import iter_frames

        self.frames: list[np.ndarray] = [f.image for f in iter_frames(path, 0, n_train)]

    def __call__(self, index: int) -> np.ndarray:
        return self.frames[index]


# ------------------------------------------------------------------------------------- split, sources

def split_frames(n_frames: int, split: float) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) frame indices: the first floor(split * n) frames train, the rest test."""
    if not 0.0 < split < 1.0:
        raise DfmError(f"--split must be between 0 and 1 (exclusive), got {split}")
    n_train = int(np.floor(split * n_frames))
    if n_train < 1 or n_train >= n_frames:
        raise DfmError(f"a split of {split} leaves no training or no test frames in a {n_frames}-frame video")
    return np.arange(n_train), np.arange(n_train, n_frames)


def select_sources(track: FaceTrack, train: np.ndarray, test: np.ndarray, targets: np.ndarray,
                   tie_deg: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Source training frame (n_test,) for each test frame and its pose angle to it (degrees).

    Rule: smallest geodesic angle between the fitted rotations; ties (within tie_deg of the smallest)
    broken by the L2 distance of the fitted expression to `targets` (n_test, 53). Invalid test frames
    get source -1 and angle NaN.
    """
    valid = np.asarray(track.valid, bool)
    cand = np.asarray(train)[valid[np.asarray(train)]]
    if cand.size == 0:
        raise DfmError("no training frame has a tracked face; cannot run the self-reenactment protocol")
    rot = np.asarray(track.rotation, np.float64)
    expr = np.asarray(track.expression, np.float64)
    src = np.full(len(test), -1, np.int64)
    ang = np.full(len(test), np.nan)
    for k, t in enumerate(test):
        if not valid[t]:
            continue
        a = rotation_angle_deg(rot[cand], rot[t])
        ties = np.flatnonzero(a <= a.min() + tie_deg)
        d = np.linalg.norm(expr[cand[ties]] - np.asarray(targets[k], np.float64), axis=1)
        j = ties[int(np.argmin(d))]
        src[k], ang[k] = cand[j], a[j]
    return src, ang


def train_decoder(track: FaceTrack, train: np.ndarray, preset: str = "fast"):
    """PersonDecoder fitted on the valid training frames' (VA, expression) pairs (None without affect)."""
    from dfm.decoder import PersonDecoder, make_decoder

    if track.valence is None or track.arousal is None:
        return None
    va = np.stack([track.valence, track.arousal], 1)
    ok = np.asarray(track.valid, bool) & np.isfinite(va).all(1)
    idx = np.asarray(train)[ok[np.asarray(train)]]
    if idx.size < 10:
        raise DfmError(f"only {idx.size} training frames have a face and an affect estimate; need at least 10")
    # time blocks small enough that a short clip still has >= 5 blocks (validation needs whole blocks)
    block = int(max(2, min(48, idx.size // 5)))
    dec = PersonDecoder(decoder=make_decoder(preset, block_frames=block))
    return dec.fit(va[idx], track.expression[idx], frame_index=idx,
                   data_info={"protocol": "self-reenactment training frames", "n_frames": int(idx.size)})


# ------------------------------------------------------------------------------------------ rendering

class _GeometryOverride:
    """Makes a renderer take row T of its geometry from what the image handed to render_frame shows.

    The renderer reads a frame's geometry from its smoothed copy (`renderer.geometry`) and, for the
    occlusion check, from its track's raw rows (`renderer.track`). Both are private copies here (the
    renderer was built on a copy of the track with its own expression array), and `set_expression`
    writes the virtual frame's expression into both (see module doc, step 2)."""

    def __init__(self, renderer: WarpRenderer):
        g = renderer.geometry
        self.renderer = renderer
        self.geometry = TrackGeometry(valid=g.valid.copy(), expression=g.expression.copy(), rotation=g.rotation.copy(),
                                      translation=g.translation.copy(), scale=g.scale.copy())
        renderer.geometry = self.geometry

    def set_expression(self, index: int, expression: np.ndarray) -> None:
        self.geometry.expression[index] = expression
        self.renderer.track.expression[index] = expression


@dataclass
class FrameRecord:
    """Per test frame: source, pose gap and the metrics of every variant."""

    index: int
    source: dict[str, int]  # setting -> source frame
    pose_angle_deg: dict[str, float]
    metrics: dict[str, dict[str, float]]  # variant -> metric -> value
    render_ms: dict[str, float]


@dataclass
class ReenactmentResult:
    """What `run_self_reenactment` measured."""

    config: dict[str, Any]
    n_frames: int
    train: tuple[int, int]  # [first, stop)
    test: tuple[int, int]
    frames: list[FrameRecord]
    summary: dict[str, dict[str, float]]  # variant -> metric means
    skipped: list[int]  # test frames without a tracked face
    decoder: dict[str, Any]
    renderer_reports: dict[str, Any]
    heatmaps: list[dict[str, Any]] = field(default_factory=list)  # crops for the heat-map figure
    seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self, per_frame: bool = True) -> dict[str, Any]:
        out = {
            "config": self.config, "n_frames": self.n_frames, "train_frames": list(self.train),
            "test_frames": list(self.test), "skipped_frames": self.skipped, "summary": self.summary,
            "decoder": self.decoder, "renderer": self.renderer_reports, "seconds": self.seconds,
        }
        if per_frame:
            out["frames"] = [asdict(f) for f in self.frames]
        return out


class SelfReenactment:
    """Renders test frames from training-frame pixels only (see module doc).

    model: the face model; track: the video's FaceTrack; frames: index -> RGB frame, asked ONLY for
    training frames (wrapped in TrainingFrames, so a leak raises); train: training frame indices.
    """

    def __init__(self, model: FaceModel, track: FaceTrack, frames: FrameReader, train: np.ndarray,
                 config: ProtocolConfig | None = None, mesh: RenderMesh | None = None):
        self.config = config or ProtocolConfig()
        self.model = model
        self.track = track
        self.train = np.asarray(train, np.int64)
        self.frames = frames if isinstance(frames, TrainingFrames) else TrainingFrames(frames, self.train)
        self.mesh = mesh if mesh is not None else RenderMesh.build(model, track.identity)
        t0 = time.perf_counter()
        self.pool = FramePool.build(track, self.frames, self.train, self.mesh, max_frames=self.config.pool_max_frames)
        self.pool_seconds = time.perf_counter() - t0
        self.renderers: dict[str, WarpRenderer] = {}
        self._overrides: dict[str, _GeometryOverride] = {}
        for s in SETTINGS:
            own = replace(track, expression=np.array(track.expression, copy=True))  # rows are overwritten
            r = WarpRenderer(self.mesh, own, self.pool, **self.config.renderer)
            self.renderers[s] = r
            self._overrides[s] = _GeometryOverride(r)
        # the renderers' smoothed geometry (all renderers smooth the same track the same way)
        g = self._overrides["A"].geometry
        self.base_expression = g.expression.copy()
        self.rotation, self.translation, self.scale = g.rotation, g.translation, g.scale
        p = self.renderers["A"].params
        margin = p.margin if self.config.repose_margin is None else float(self.config.repose_margin)
        self._flow_args = dict(margin=margin, scale=p.flow_scale, max_side=p.max_work_side)
        self._face_size_cm = p.face_size_cm

    # -------------------------------------------------------------------------------- building blocks
    def _project(self, expression: np.ndarray, camera_of: int) -> np.ndarray:
        v = self.mesh.vertices(expression)
        return project_vertices(v, self.rotation[camera_of], self.translation[camera_of], float(self.scale[camera_of]))

    def repose(self, source: int, camera_of: int, expression: np.ndarray) -> np.ndarray:
        """Frame `source`'s pixels moved to the camera of frame `camera_of` showing `expression` (53,).

        A dense backward flow from the source's mesh (its smoothed expression and camera) to the target
        mesh, warping the source frame; outside the face it fades out across the renderer's margin, and
        pixels beyond that keep the source frame's values.
        """
        image = self.frames(source)
        p_src = self._project(self.base_expression[source], source)
        p_tgt = self._project(expression, camera_of)
        face_px = self._face_size_cm * float(self.scale[camera_of])
        flow = compute_flow(self.mesh, p_src, p_tgt, image.shape[:2], face_px, **self._flow_args)
        if flow is None:
            return image.copy()
        crop = warp_crop(image, flow.full_map())
        keep = flow.grid.upsample(flow.falloff) > 0.0
        return paste(image, crop, flow.grid, keep)

    def virtual_expression(self, source: int, test: int) -> np.ndarray:
        """What the re-posed source shows: its own expression with the test frame's eye shapes."""
        e = self.base_expression[source].copy()
        e[EYE_INDEX] = self.base_expression[test][EYE_INDEX]
        return e

    def render(self, setting: str, test: int, source: int, target: np.ndarray,
               reposed: np.ndarray | None = None) -> np.ndarray:
        """The renderer's output for test frame `test` from training frame `source`, target expression (53,)."""
        virtual = self.virtual_expression(source, test)
        if reposed is None:
            reposed = self.repose(source, test, virtual)
        self._overrides[setting].set_expression(test, virtual)
        return self.renderers[setting].render_frame(test, reposed, np.asarray(target, np.float32), 1.0)


# ---------------------------------------------------------------------------------------- the protocol

def _crop_and_masks(model: FaceModel, track: FaceTrack, t: int, box: CropBox) -> tuple[np.ndarray, np.ndarray]:
    v = model.vertices(track.identity, track.expression[t])
    p = box.to_crop(track.project(v, t))
    nm = render_nmfc_projected(model, p, box.size, box.size)
    return nm.face, nm.mouth_region


def run_self_reenactment(model: FaceModel, track: FaceTrack, frames: FrameReader, truth: FrameReader,
                         config: ProtocolConfig | None = None, progress: bool = False,
                         mesh: RenderMesh | None = None, decoder: Any = None,
                         render_hook: Callable[..., np.ndarray] | None = None) -> ReenactmentResult:
    """Run the protocol on one video.

    frames: index -> RGB frame, used for RENDERING (only training frames are ever requested);
    truth: index -> RGB frame, used only to read the ground-truth test frames for the metrics.
    decoder: a fitted decoder for setting B (`.predict(va (N, 2)) -> (N, 53)`); None = train a
    PersonDecoder on the training frames (`train_decoder`).
    render_hook: another renderer on top of / instead of the warp renderer (the registry's warp+refine,
    neural): hook(setting, warp_renderer, test, target (53,), reposed, warp_output) -> output frame; it may
    use only what it is handed (the re-posed training frame, the warp output) and the test frame's geometry.
    """
    cfg = config or ProtocolConfig()
    t_start = time.perf_counter()
    n = track.n_frames
    train, test = split_frames(n, cfg.split)
    valid = np.asarray(track.valid, bool)

    t0 = time.perf_counter()
    trained_here = decoder is None
    if trained_here:
        decoder = train_decoder(track, train, cfg.decoder)
    elif track.valence is None or track.arousal is None:
        decoder = None
    targets: dict[str, np.ndarray] = {"A": np.asarray(track.expression[test], np.float32)}
    if decoder is not None:
        va = np.stack([track.valence[test], track.arousal[test]], 1)
        ok = np.isfinite(va).all(1)
        b = np.asarray(track.expression[test], np.float32).copy()
        if ok.any():
            b[ok] = decoder.predict(va[ok])
        targets["B"] = b
        b_ok = ok
    else:
        b_ok = np.zeros(len(test), bool)
    t_decoder = time.perf_counter() - t0

    sources = {s: select_sources(track, train, test, targets[s], cfg.pose_tie_deg) for s in targets}
    rig = SelfReenactment(model, track, frames, train, cfg, mesh=mesh)

    settings = [s for s in SETTINGS if s in targets]
    n_heat = max(int(cfg.heatmap_frames), 0)
    valid_pos = [k for k, t in enumerate(test) if valid[t]]
    heat_pos = set(np.asarray(valid_pos)[np.unique(np.linspace(0, len(valid_pos) - 1, n_heat).round().astype(int))].tolist()
                   if n_heat and valid_pos else [])

    records: list[FrameRecord] = []
    heatmaps: list[dict[str, Any]] = []
    skipped: list[int] = []
    bar = _progress(len(test), "self-reenactment", progress)
    for k, t in enumerate(test):
        t = int(t)
        bar.update(1)
        if not valid[t]:
            skipped.append(t)
            continue
        box = CropBox.around(track.landmarks[t], cfg.crop_margin, cfg.crop_size)
        gt_frame = truth(t)
        gt = box.apply(gt_frame)
        inside = box.inside(gt_frame.shape[:2])
        face_m, mouth_m = _crop_and_masks(model, track, t, box)
        rec = FrameRecord(index=t, source={}, pose_angle_deg={}, metrics={}, render_ms={})
        crops: dict[str, np.ndarray] = {}
        for s in settings:
            if s == "B" and not b_ok[k]:
                continue
            src = int(sources[s][0][k])
            rec.source[s] = src
            rec.pose_angle_deg[s] = float(sources[s][1][k])
            c0 = time.perf_counter()
            virtual = rig.virtual_expression(src, t)
            reposed = rig.repose(src, t, virtual)
            c1 = time.perf_counter()
            out = rig.render(s, t, src, targets[s][k], reposed=reposed)
            if render_hook is not None:
                out = render_hook(s, rig.renderers[s], t, targets[s][k], reposed, out)
            c2 = time.perf_counter()
            rec.render_ms[f"repose_{s}"] = (c1 - c0) * 1e3
            rec.render_ms[s] = (c2 - c1) * 1e3
            crops[s] = box.apply(out)
            rec.metrics[s] = frame_metrics(crops[s], gt, face_m, mouth_m, inside)
            if cfg.baselines:
                warped = rig.repose(src, t, _with_eyes(targets[s][k], rig.base_expression[t]))
                crops[f"warp_{s}"] = box.apply(warped)
                rec.metrics[f"warp_{s}"] = frame_metrics(crops[f"warp_{s}"], gt, face_m, mouth_m, inside)
                if s == "A":
                    crops["repose"] = box.apply(reposed)
                    rec.metrics["repose"] = frame_metrics(crops["repose"], gt, face_m, mouth_m, inside)
        records.append(rec)
        if k in heat_pos:
            heatmaps.append({"index": t, "truth": gt, "face_mask": face_m & inside, "mouth_mask": mouth_m & inside,
                             "inside": inside,
                             "source": dict(rec.source),
                             "outputs": {v: c for v, c in crops.items()},
                             "errors": {v: np.where(inside, pixel_error(c, gt), np.nan) for v, c in crops.items()},
                             "metrics": {v: dict(m) for v, m in rec.metrics.items()}})
    bar.close()

    summary = {v: summarise([r.metrics[v] for r in records if v in r.metrics]) for v in VARIANTS
               if any(v in r.metrics for r in records)}
    for s in settings:
        angles = np.array([r.pose_angle_deg[s] for r in records if s in r.pose_angle_deg])
        ms = np.array([r.render_ms[s] for r in records if s in r.render_ms])
        if s in summary:
            summary[s]["mean_pose_angle_deg"] = float(angles.mean()) if angles.size else float("nan")
            summary[s]["render_ms_mean"] = float(ms.mean()) if ms.size else float("nan")
            summary[s]["distinct_sources"] = int(len({r.source[s] for r in records if s in r.source}))
    dec_info: dict[str, Any] = {"available": decoder is not None}
    if decoder is not None:
        rep = getattr(decoder, "report_", None)
        dec_info.update({"preset": cfg.decoder if trained_here else type(decoder).__name__,
                         "n_pairs": int(getattr(decoder, "data_info_", {}).get("n_pairs", 0)),
                         "rmse_val": None if rep is None else float(rep.rmse_val),
                         "rmse_val_baseline": None if rep is None else float(rep.rmse_val_baseline),
                         "choice": None if getattr(decoder, "choice_", None) is None else decoder.choice_.to_dict(),
                         "test_rmse_vs_fitted": float(np.sqrt(np.mean((targets["B"][b_ok] - targets["A"][b_ok]) ** 2)))
                         if b_ok.any() else None,
                         "test_frames_with_va": int(b_ok.sum())})
    reports = {s: r.report.summary() for s, r in rig.renderers.items()}
    leaked = sorted(set(rig.frames.requested) - set(int(i) for i in train))
    if leaked:  # TrainingFrames raises first; this is a second line of defence
        raise ProtocolViolation(f"test frames were read by the renderer: {leaked[:10]}")
    cfg_dict = asdict(cfg)
    cfg_dict["source_rule"] = ("closest head pose among valid training frames (geodesic angle between fitted "
                               f"rotations); ties within {cfg.pose_tie_deg} deg broken by expression distance "
                               "(L2, 53 coefficients) to the setting's target")
    cfg_dict["renderer_params"] = asdict(rig.renderers["A"].params)
    cfg_dict["pool_frames"] = len(rig.pool)
    cfg_dict["mouth_apd_mask"] = "NMFC mouth_region (lip landmarks' hull dilated by 0.2 x mouth width)"
    return ReenactmentResult(
        config=cfg_dict, n_frames=n, train=(int(train[0]), int(train[-1]) + 1), test=(int(test[0]), int(test[-1]) + 1),
        frames=records, summary=summary, skipped=skipped, decoder=dec_info, renderer_reports=reports,
        heatmaps=heatmaps,
        seconds={"decoder": t_decoder, "pool": rig.pool_seconds, "total": time.perf_counter() - t_start},
    )


def _with_eyes(target: np.ndarray, eyes_from: np.ndarray) -> np.ndarray:
    e = np.asarray(target, np.float32).copy()
    e[EYE_INDEX] = eyes_from[EYE_INDEX]
    return e


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="frame", disable=not enabled, leave=False, dynamic_ncols=True)


__all__ = [
    "FrameRecord", "ProtocolConfig", "ProtocolViolation", "ReenactmentResult", "SelfReenactment", "SETTINGS",
    "TrainingFrames", "VARIANTS", "VideoTrainingFrames", "run_self_reenactment", "select_sources",
    "split_frames", "train_decoder",
]
