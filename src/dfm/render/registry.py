"""Renderers by name (name -> lazy factory), the one place that knows which renderers exist.

    renderer = make_renderer("warp+refine", RendererContext(model, mesh, track, pool, trained=finder))
    renderer.render_video(frames, targets, weights, target_va)   # same calls for every renderer

- `warp`: the training-free warp renderer (`dfm.render.renderer.WarpRenderer`).
- `warp+refine`: the warp renderer followed by the mouth refiner trained on this video
  (`dfm.render.neural.refiner`).
- `neural`: the Head2Head++-style renderer trained on this video (`dfm.render.neural.renderer`).

A renderer that needs a trained model asks `context.trained(kind)` for its folder; none ->
`RendererNotTrained`, whose one line names the command that trains it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from dfm.errors import InputError

__all__ = ["RENDERERS", "RendererContext", "RendererNotTrained", "make_renderer", "check_renderer_name",
           "TRAIN_COMMANDS", "needs_training"]


class RendererNotTrained(InputError):
    """The chosen renderer has no trained model for this video."""


@dataclass
class RendererContext:
    """What a factory may use. trained(kind) -> folder of this video's trained model of that kind
    ("refiner" | "neural"), or None."""

    model: Any  # FaceModel
    mesh: Any  # RenderMesh of this person
    track: Any  # FaceTrack
    pool: Any = None  # FramePool
    params: dict[str, Any] = field(default_factory=dict)  # WarpRenderer keyword parameters
    trained: Callable[[str], Path | None] = lambda kind: None
    device: str = "cpu"


TRAIN_COMMANDS = {"warp+refine": "dfm renderer train VIDEO --refiner", "neural": "dfm renderer train VIDEO"}
_KIND = {"warp+refine": "refiner", "neural": "neural"}


def _warp(ctx: RendererContext):
    from dfm.render.renderer import WarpRenderer

    return WarpRenderer(ctx.mesh, ctx.track, ctx.pool, **ctx.params)


def _folder(name: str, ctx: RendererContext) -> Path:
    from dfm.render.neural.checkpoint import is_trained

    folder = ctx.trained(_KIND[name])
    if not is_trained(folder):
        raise RendererNotTrained(f"the {name} renderer has no trained model for this video; train it with "
                                 f"`{TRAIN_COMMANDS[name]}`")
    return folder


def _warp_refine(ctx: RendererContext):
    from dfm.render.neural.checkpoint import load_refiner
    from dfm.render.neural.refiner import MouthRefiner, RefinedRenderer

    net, _ = load_refiner(_folder("warp+refine", ctx))
    return RefinedRenderer(_warp(ctx), MouthRefiner(net, ctx.model, ctx.track.identity))


def _neural(ctx: RendererContext):
    from dfm.render.neural.checkpoint import load_generator
    from dfm.render.neural.renderer import NeuralRenderer

    g, card = load_generator(_folder("neural", ctx), ctx.device)
    return NeuralRenderer(ctx.model, ctx.track, g, sigma=float(card.get("crop_sigma", 3.0)), device=ctx.device)


_FACTORIES: dict[str, Callable[[RendererContext], Any]] = {"warp": _warp, "warp+refine": _warp_refine, "neural": _neural}
RENDERERS: tuple[str, ...] = tuple(_FACTORIES)


def check_renderer_name(name: str) -> str:
    """The canonical name, or InputError listing the choices."""
    key = str(name).strip().lower()
    if key not in _FACTORIES:
        raise InputError(f"unknown renderer {name!r}; choose one of {', '.join(RENDERERS)}")
    return key


def needs_training(name: str) -> str | None:
    """The trained-model kind a renderer needs ("refiner" | "neural"), None for warp."""
    return _KIND.get(check_renderer_name(name))


def make_renderer(name: str, context: RendererContext):
    """Build the renderer `name` (see module doc)."""
    return _FACTORIES[check_renderer_name(name)](context)
