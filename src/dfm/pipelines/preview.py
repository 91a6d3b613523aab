"""Fast previews of one edited frame for interactive use (the web tool's live preview).

`Previewer` keeps what a preview needs warm for one video: the track, the decoder, the renderer (mesh,
smoothed geometry, appearance pool) and the decoded frames around the playhead; plans are cached per edit
list, so moving the playhead costs one frame render and changing an edit costs one plan plus one render.

    p = Previewer(session, "clip.mp4")
    result = p.frame(edits, at=2.0)       # PreviewResult: image (H, W, 3) uint8, index, weight, timings
    p.frame(edits, at=2.0, renderer="warp+refine")   # any renderer of dfm.render.registry, built once each
    p.frame(edits, at=2.0, preserve_speech=False)     # the mouth on its closed rest (None: as the job decides)

The output equals `Session.preview` for the same edits (a fresh renderer state for every frame). A
renderer without a trained model for the video raises RendererNotTrained (an InputError) whose one line
names the command that trains it, before any frame is rendered.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

PLAN_CACHE = 8  # edit lists kept (undo/redo and A/B toggling hit them)
FRAME_CACHE = 96  # decoded frames kept (~66 MB at 640x360)
FORWARD_LIMIT = 48  # decode forward (no seek) to a frame at most this far after the last one read
RESULT_CACHE = 32  # rendered frames kept per (edit list, frame): scrubbing back and forth
KEEP_BEHIND = 4  # frames before a requested one kept on the way (stepping back)


@dataclass
class PreviewResult:
    image: np.ndarray  # (H, W, 3) uint8 RGB
    index: int  # frame index shown
    weight: float  # the edit's weight at that frame (0: the input frame unchanged)
    preserve_speech: bool = False  # the frame's edit keeps the original articulation (decided, or as asked)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step of this call

    @property
    def edited(self) -> bool:
        return self.weight > 0


class Previewer:
    """Warm state for previews of one video (see module doc). Thread-safe: calls are serialised."""

    def __init__(self, session: Any, video: str | os.PathLike, *, person: str | None = None,
                 collection: Sequence[str | os.PathLike] = (), seed: int = 0, transition_frames: int = 20):
        self.session, self.video = session, Path(video)
        self.person, self.collection = person, [Path(c) for c in collection]
        self.seed, self.transition_frames = seed, transition_frames
        self._lock = threading.Lock()
        self._plans: OrderedDict[tuple, Any] = OrderedDict()  # (edit list JSON, preserve_speech)
        self._frames: OrderedDict[int, np.ndarray] = OrderedDict()
        self._renderers: dict[str, Any] = {}  # by renderer name; all share the track, decoder and pool
        self._decoder = None
        self._track = None
        self._results: OrderedDict[tuple, np.ndarray] = OrderedDict()  # (renderer, edits, speech, frame)
        self._reader = None  # an open forward decoder (iter_frames) and the index it last produced
        self._reader_at = -1

    def warm_up(self) -> None:
        """Load the track, train/load the decoder and build the renderer (the slow part, once)."""
        with self._lock:
            renderer = self._ensure_renderer()
            track = self._track
            valid = np.flatnonzero(track.valid)
            if len(valid):  # one throw-away frame compiles the renderer's kernels
                i = int(valid[len(valid) // 2])
                target = track.expression[i].copy()
                target[:] = np.clip(target + 0.2, 0.0, 1.0)
                renderer.reset()
                renderer.render_frame(i, self._frame(i), target, 1.0)

    def frame(self, edits, at: float | None = None, index: int | None = None, renderer: str = "warp",
              preserve_speech: bool | None = None) -> PreviewResult:
        """The frame at `at` seconds (or frame `index`) with `edits` (EditList or list of Edit) applied by
        the renderer named `renderer` (warp | warp+refine | neural); `preserve_speech` as `dfm edit`'s
        (None: on when the person talks near the edits, Session.speaks)."""
        from dfm.edits import EditList
        from dfm.render.registry import check_renderer_name
        from dfm.render.renderer import renderer_targets

        edit_list = edits if isinstance(edits, EditList) else EditList(list(edits))
        name = check_renderer_name(renderer)
        with self._lock:
            timings: dict[str, float] = {}
            t = time.perf_counter()
            renderer = self._ensure_renderer(name)
            timings["warm"] = time.perf_counter() - t
            track = self._track
            i = track.frame_index_at(float(at)) if index is None else int(np.clip(index, 0, track.n_frames - 1))
            t = time.perf_counter()
            key = (edit_list.to_json(), preserve_speech)
            plan = self._plan(key, edit_list)
            timings["plan"] = time.perf_counter() - t
            kept = bool(plan.edit_index[i] >= 0 and plan.speech_edits[plan.edit_index[i]])  # this frame's edit
            done = self._results.get((name, key, i))
            if done is not None:
                self._results.move_to_end((name, key, i))
                return PreviewResult(done, i, float(plan.weight[i]), kept, timings)
            t = time.perf_counter()
            image = self._frame(i)
            timings["decode"] = time.perf_counter() - t
            weight = float(plan.weight[i])
            t = time.perf_counter()
            if weight > 0:
                renderer.reset()  # each preview is rendered as a fresh start, like Session.preview
                target = renderer_targets(renderer, plan.target[i:i + 1], plan.original_share[i:i + 1], i)[0]
                image = renderer.render_frame(i, image, target, weight, target_va=plan.va[i])
                self._results[(name, key, i)] = image
                while len(self._results) > RESULT_CACHE:
                    self._results.popitem(last=False)
            timings["render"] = time.perf_counter() - t
            return PreviewResult(image, i, weight, kept, timings)

    # ------------------------------------------------------------------------------------------ caches
    def _ensure_renderer(self, name: str = "warp"):
        renderer = self._renderers.get(name)
        if renderer is None:
            from dfm.pipelines.renderer_train import check_trained

            s = self.session
            if self._track is None:
                self._track = s.analyze(self.video)
            check_trained(name, self._track)  # before the decoder and the pool: a missing model fails fast
            if self._decoder is None:
                self._decoder = s.decoder_for(self._track, person=self.person, collection=self.collection)[0]
            pool = s.frame_pool(self.video, self._track, collection=self.collection)
            renderer = self._renderers[name] = s.renderer(name, self._track, pool)
        return renderer

    def _plan(self, key: tuple[str, bool | None], edit_list):
        plan = self._plans.get(key)
        if plan is None:
            plan = self.session.plan(self.video, edit_list, decoder=self._decoder, track=self._track, seed=self.seed,
                                     transition_frames=self.transition_frames, preserve_speech=key[1])
            self._plans[key] = plan
            while len(self._plans) > PLAN_CACHE:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return plan

    def _frame(self, index: int) -> np.ndarray:
        """The decoded frame `index`: from the cache, else by decoding forward from the last frame read
        (playback, stepping: no seek), else by a seek to the keyframe before it."""
        image = self._frames.get(index)
        if image is not None:
            self._frames.move_to_end(index)
            return image
        from dfm.io.video import iter_frames

        if self._reader is None or not (self._reader_at < index <= self._reader_at + FORWARD_LIMIT):
            if self._reader is not None:
                self._reader.close()
            self._reader, self._reader_at = iter_frames(self.video, start=index), index - 1
        for frame in self._reader:
            self._reader_at = frame.index
            if frame.index >= index - KEEP_BEHIND:  # RGB conversion only for frames a user steps back to
                self._frames[frame.index] = np.asarray(frame.image)
                self._frames.move_to_end(frame.index)
            if frame.index >= index:
                break
        while len(self._frames) > FRAME_CACHE:
            self._frames.popitem(last=False)
        if index not in self._frames:  # the reader ended early (past the last frame)
            self._reader = None
            from dfm.io.video import read_frame

            self._frames[index] = np.asarray(read_frame(self.video, index).image)
        return self._frames[index]
