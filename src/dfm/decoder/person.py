"""PersonDecoder: the decoder the rest of the product uses — the person's data decoder, blended with the
universal FACS prior where the person's data does not cover the VA plane.

Blend rule (a shrinkage estimate with the prior worth `prior_strength` pseudo-pairs): with
n(q) = sum_i exp(-|q - va_i|^2 / (2 h^2)) the effective number of training pairs near the query q
(h = `coverage_bandwidth`),

    w_prior(q) = k / (k + n(q)),    expression(q) = (1 - w_prior) * data(q) + w_prior * prior(q).

So w_prior -> 1 far from the data and -> 0 where the person has many frames; both maps are smooth in VA,
so the blend is too.

The data decoder itself is chosen on the time-block validation (`select=True`, dfm.decoder.select):
the requested preset, a more regularised local-linear one, the prior on the person's mean, or the
person's mean — whichever has the lowest validation RMSE, so it is never worse than the mean. When the
mean wins (the person's VA says nothing about the expression) edits use the universal prior on the
person's neutral face everywhere (w_prior = 1): the mean alone would edit nothing. The prior's neutral is the person's own neutral expression when the data has one
(mean expression of the pairs inside the neutral region), so blending does not pull the person's resting
face towards the generic model's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dfm.affect import regions
from dfm.decoder.base import DataDecoder, check_expr, check_va
from dfm.decoder.grid import VAGrid
from dfm.decoder.kernel import KernelDecoder
from dfm.decoder.prior import FacsPrior
from dfm.decoder.select import DecoderChoice, select_decoder
from dfm.decoder.split import TimeBlockSplit
from dfm.errors import DfmError
from dfm.face.expressions import N_EXPRESSIONS

PRESETS = ("fast", "paper", "mlp")


def make_decoder(preset: str = "fast", **overrides: Any) -> DataDecoder:
    """A data decoder by preset name: fast (KernelDecoder), paper (PaperDecoder), mlp (small MLPDecoder)."""
    if preset == "fast":
        return KernelDecoder(**overrides)
    if preset in ("paper", "mlp"):
        from dfm.decoder.mlp import MLPDecoder, PaperDecoder  # torch only when a net is asked for

        return (PaperDecoder if preset == "paper" else MLPDecoder)(**overrides)
    raise DfmError(f"unknown decoder preset {preset!r}; choose one of {', '.join(PRESETS)}")


@dataclass
class CoverageRow:
    label: str
    intensity: str | None  # low / medium / high; None for neutral and for a label's summary row
    n_pairs: int  # training pairs inside the region
    data_share: float  # mean (1 - w_prior) over the region: 1 = all from the person's data

    @property
    def source(self) -> str:
        s = self.data_share
        if s >= 0.95:
            return "the person's data"
        if s >= 0.5:
            return "mostly the person's data"
        if s > 0.05:
            return "mostly the universal prior"
        return "the universal prior (no data)"

    def line(self) -> str:
        name = self.label if self.intensity is None else f"{self.label} {self.intensity}"
        return f"{name}: {100 * self.data_share:.0f}% data coverage ({self.n_pairs} pairs), {self.source}"


@dataclass
class CoverageReport:
    """How much of each label's VA region the person's data decodes (the rest is the universal prior)."""

    labels: list[CoverageRow] = field(default_factory=list)  # one row per label (all its intensities)
    levels: list[CoverageRow] = field(default_factory=list)  # one row per label and intensity level

    def lines(self) -> list[str]:
        return [row.line() for row in self.labels]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def share(self, label: str, intensity: str | None = None) -> float:
        rows = self.labels if intensity is None else self.levels
        for row in rows:
            if row.label == label and row.intensity == intensity:
                return row.data_share
        raise KeyError(f"no coverage row for {label} {intensity or ''}".strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "labels": [asdict(r) | {"source": r.source} for r in self.labels],
            "levels": [asdict(r) | {"source": r.source} for r in self.levels],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CoverageReport":
        def rows(items):
            return [CoverageRow(r["label"], r["intensity"], int(r["n_pairs"]), float(r["data_share"])) for r in items]

        return cls(rows(d.get("labels", [])), rows(d.get("levels", [])))


REST_PERCENTILE = 10.0


def rest_face(expr: Any) -> np.ndarray:
    """(53,) a person's resting activation of each blendshape: its 10th percentile over their frames.

    Closer to the person's own rest pose than the generic model's zero face (someone whose brows are
    always raised keeps them raised), and unlike the mean not pulled into an emotion that fills most of
    the footage (a clip that laughs half the time does not rest in a smile: at the 25th percentile the
    Pexels clip still rested in a smile of 0.26, so every label's edit kept a smirk)."""
    e = np.asarray(expr, np.float32).reshape(-1, N_EXPRESSIONS)
    return np.percentile(e, REST_PERCENTILE, axis=0).astype(np.float32) if len(e) else np.zeros(N_EXPRESSIONS, np.float32)


class PersonDecoder:
    """VA -> expression for one person: data decoder + FACS prior, blended by data coverage.

    decoder: a preset name ("fast", "paper", "mlp") or an unfitted DataDecoder.
    prior: the universal decoder (default FacsPrior()); its neutral is replaced per `neutral`.
    coverage_bandwidth: h of the coverage density (VA units). prior_strength: k, in pairs.
    neutral: "auto" (the person's mean expression over pairs in the neutral region, if at least
    `min_neutral_pairs`; else `rest_face` of all pairs), "zeros", or a (53,) expression.
    """

    def __init__(
        self,
        decoder: str | DataDecoder = "fast",
        prior: FacsPrior | None = None,
        coverage_bandwidth: float = 0.1,
        prior_strength: float = 10.0,
        neutral: str | Any = "auto",
        min_neutral_pairs: int = 25,
        grid_size: int = 129,
        select: bool = True,
    ):
        self.decoder = decoder
        self.prior = prior
        self.coverage_bandwidth = coverage_bandwidth
        self.prior_strength = prior_strength
        self.neutral = neutral
        self.min_neutral_pairs = min_neutral_pairs
        self.grid_size = grid_size
        self.select = select

    # -- construction -------------------------------------------------------------------------------
    @classmethod
    def universal(cls, neutral: Any = None, prior: FacsPrior | None = None) -> "PersonDecoder":
        """A decoder for a person without a collection: the FACS prior alone (blend weight 1 everywhere)."""
        obj = cls(decoder="fast", prior=prior, neutral="zeros" if neutral is None else neutral)
        obj.decoder_ = None
        obj.neutral_ = obj._neutral_from_param(None, None)
        obj.prior_ = (prior or FacsPrior()).with_neutral(obj.neutral_)
        obj.coverage_counts_ = np.zeros((obj.grid_size, obj.grid_size))
        obj.data_info_ = {"n_pairs": 0}
        obj.choice_ = None
        obj._density = None
        return obj

    def _neutral_from_param(self, va: np.ndarray | None, expr: np.ndarray | None) -> np.ndarray:
        if isinstance(self.neutral, str):
            if self.neutral == "zeros":
                self.neutral_source_ = "zeros"
                return np.zeros(N_EXPRESSIONS, np.float32)
            if self.neutral != "auto":
                raise DfmError(f"neutral must be 'auto', 'zeros' or a ({N_EXPRESSIONS},) expression")
            if va is not None and expr is not None:
                inside = regions.region_for("neutral", None).contains(va)
                if int(inside.sum()) >= self.min_neutral_pairs:
                    self.neutral_source_ = f"mean of {int(inside.sum())} pairs in the neutral region"
                    return expr[inside].mean(axis=0).astype(np.float32)
            if expr is not None and len(expr):
                self.neutral_source_ = f"rest face of all {len(expr)} pairs (too few in the neutral region)"
                return rest_face(expr)
            self.neutral_source_ = "zeros (no pairs)"
            return np.zeros(N_EXPRESSIONS, np.float32)
        n = np.asarray(self.neutral, np.float32).reshape(-1)
        if n.shape != (N_EXPRESSIONS,):
            raise DfmError(f"neutral expression must have shape ({N_EXPRESSIONS},), got {n.shape}")
        self.neutral_source_ = "given"
        return np.clip(n, 0.0, 1.0)

    def fit(
        self,
        va: Any,
        expr: Any,
        *,
        video_ids: Any = None,
        frame_index: Any = None,
        split: TimeBlockSplit | None = None,
        data_info: dict[str, Any] | None = None,
    ) -> "PersonDecoder":
        """Fit the data decoder (time-block validation), the coverage density and the person's neutral.

        data_info: free-form facts about the data for the model card (person name, video paths / hashes).
        """
        va = check_va(va)
        expr = check_expr(expr, va.shape[0])
        dec = make_decoder(self.decoder) if isinstance(self.decoder, str) else self.decoder
        self.choice_: DecoderChoice | None = None
        if self.select:
            dec, self.choice_ = select_decoder(dec, va, expr, video_ids=video_ids, frame_index=frame_index, split=split)
        else:
            dec.fit(va, expr, video_ids=video_ids, frame_index=frame_index, split=split)
        self.decoder_ = dec
        # the pairs the final data decoder learned from: train (+ val when it was refit on all)
        used = np.concatenate([dec.split_.train, dec.split_.val]) if dec.report_.refit_on_all else dec.split_.train
        grid = VAGrid(self.grid_size)
        self.coverage_counts_, _ = grid.bin(va[used])
        self._density = None
        self.neutral_ = self._neutral_from_param(va[used], expr[used])
        self.prior_ = (self.prior or FacsPrior()).with_neutral(self.neutral_)
        vids = np.zeros(va.shape[0], np.int64) if video_ids is None else np.asarray(video_ids).reshape(-1)
        uniq, counts = np.unique(vids, return_counts=True)
        self.data_info_ = {
            "n_pairs": int(va.shape[0]),
            "n_pairs_used": int(used.size),
            "videos": {str(u): int(c) for u, c in zip(uniq.tolist(), counts.tolist())},
            "region_counts": regions.coverage(va),
            **(data_info or {}),
        }
        return self

    # -- prediction ---------------------------------------------------------------------------------
    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "prior_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise DfmError("PersonDecoder is not fitted: call fit(), PersonDecoder.universal() or load()")

    def coverage_density(self, va: Any) -> np.ndarray:
        """(N,) effective number of training pairs near each VA point (Gaussian, h = coverage_bandwidth)."""
        self._check_fitted()
        va = check_va(va)
        if self.decoder_ is None:
            return np.zeros(va.shape[0])
        grid = VAGrid(self.grid_size)
        if getattr(self, "_density", None) is None:
            self._density = grid.spline_coefficients(grid.effective_count(self.coverage_counts_, self.coverage_bandwidth))
        return np.maximum(grid.lookup(self._density, va), 0.0)

    @property
    def uses_data(self) -> bool:
        """Whether the person's data shapes the decoded expressions (False: the universal prior alone)."""
        return getattr(self, "decoder_", None) is not None and self.decoder_.kind != "mean"

    def blend_weights(self, va: Any) -> np.ndarray:
        """(N,) weight of the universal prior in [0, 1]: ~1 where the person has no data, ~0 in dense data
        (1 everywhere when validation chose the mean: the data carries no VA information)."""
        if self.is_fitted and getattr(self, "decoder_", None) is not None and not self.uses_data:
            return np.ones(check_va(va).shape[0], np.float32)
        n = self.coverage_density(va)
        k = float(self.prior_strength)
        return (k / (k + n)).astype(np.float32) if k > 0 else np.zeros(n.shape, np.float32)

    def predict_data(self, va: Any) -> np.ndarray:
        self._check_fitted()
        if self.decoder_ is None:
            raise DfmError("this person has no data decoder (universal prior only)")
        return self.decoder_.predict(va)

    def predict_prior(self, va: Any) -> np.ndarray:
        self._check_fitted()
        return self.prior_.predict(va)

    def predict(self, va: Any) -> np.ndarray:
        """(N, 2) valence/arousal -> (N, 53) float32 expression in [0, 1]."""
        self._check_fitted()
        va = check_va(va)
        prior = self.prior_.predict(va)
        if self.decoder_ is None:
            return prior
        w = self.blend_weights(va)[:, None]
        out = (1.0 - w) * self.decoder_.predict(va) + w * prior
        return np.clip(out, 0.0, 1.0).astype(np.float32)

    def decode_label(self, label: str, intensity: str | float | None = "medium", n: int = 256, seed: int = 0):
        """Mean decoded expression over points sampled in a label's VA region (for reports and checks)."""
        rng = np.random.default_rng(seed)
        region = regions.region_for(label, None if label == "neutral" else intensity)
        return self.predict(region.sample(n, rng)).mean(axis=0)

    # -- reports ------------------------------------------------------------------------------------
    @property
    def report_(self):
        """The data decoder's TrainingReport (None for a universal decoder)."""
        return None if getattr(self, "decoder_", None) is None else self.decoder_.report_

    def coverage_report(self, n_samples: int = 1000, seed: int = 0) -> CoverageReport:
        """Per label region (and per intensity level): training pairs inside and the share of the decoded
        expression that comes from the person's data (1 - mean prior weight over the region)."""
        self._check_fitted()
        rng = np.random.default_rng(seed)
        counts = self.data_info_.get("region_counts") or {}
        out = CoverageReport()
        for label in regions.LABELS:
            if label == "neutral":
                pts = regions.region_for("neutral", None).sample(n_samples, rng)
                share = float(1.0 - self.blend_weights(pts).mean())
                n = int(counts.get("neutral", {}).get("all", 0))
                out.labels.append(CoverageRow("neutral", None, n, share))
                out.levels.append(CoverageRow("neutral", None, n, share))
                continue
            shares, total = [], 0
            for level in regions.INTENSITY_LEVELS:
                pts = regions.region_for(label, level).sample(n_samples, rng)
                share = float(1.0 - self.blend_weights(pts).mean())
                n = int(counts.get(label, {}).get(level, 0))
                out.levels.append(CoverageRow(label, level, n, share))
                shares.append(share)
                total += n
            out.labels.append(CoverageRow(label, None, total, float(np.mean(shares))))
        return out

    def summary(self) -> str:
        """What `dfm person train` prints: the training report and the coverage lines."""
        self._check_fitted()
        head = "universal FACS prior only (no person data)" if self.decoder_ is None else self.decoder_.report_.summary()
        choice = [] if getattr(self, "choice_", None) is None else [self.choice_.line()]
        return "\n".join([head, *choice, f"neutral expression: {self.neutral_source_}", *self.coverage_report().lines()])

    def get_params(self) -> dict[str, Any]:
        return {
            "decoder": self.decoder if isinstance(self.decoder, str) else self.decoder.kind,
            "coverage_bandwidth": self.coverage_bandwidth,
            "prior_strength": self.prior_strength,
            "neutral": self.neutral if isinstance(self.neutral, str) else "given",
            "min_neutral_pairs": self.min_neutral_pairs,
            "grid_size": self.grid_size,
            "select": self.select,
        }

    # -- persistence --------------------------------------------------------------------------------
    def save(self, directory: Any, *, overwrite: bool = False) -> None:
        from dfm.decoder.persist import save_model

        save_model(self, directory, overwrite=overwrite)

    @classmethod
    def load(cls, directory: Any) -> "PersonDecoder":
        from dfm.decoder.persist import load_model

        obj = load_model(directory)
        if not isinstance(obj, cls):
            raise DfmError(f"{directory} holds a {type(obj).__name__}, not a person decoder")
        return obj


def va_orbit(n: int = 12, radius: float = 0.8, start_deg: float = 0.0) -> np.ndarray:
    """(n, 2) VA points on a circle (counter-clockwise from +valence): the orbit of the paper's Fig. 5.

    `dfm person show` decodes it (PersonDecoder.predict) and renders each expression on the mean face.
    """
    t = np.radians(start_deg) + 2.0 * np.pi * np.arange(n) / n
    return (radius * np.stack([np.cos(t), np.sin(t)], axis=1)).astype(np.float32)
