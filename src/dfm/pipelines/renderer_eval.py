"""The trained renderers inside the self-reenactment protocol (`dfm evaluate --renderer warp+refine|neural`).

Only models trained with `--frames train` (the protocol's training frames) are used, so no test-frame
pixel has been seen in training either. The hook gets what the protocol hands it: the warp renderer's
output (warp+refine refines its mouth) or the re-posed training frame (neural paints its generated face
into it), and the test frame's geometry.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["protocol_render_hook"]


def protocol_render_hook(session, track, renderer: str, split: float = 0.7) -> Callable | None:
    """None for warp; else hook(setting, warp_renderer, test, target, reposed, warp_output) -> frame."""
    from dfm.pipelines.renderer_train import check_trained, trained_renderer
    from dfm.render.registry import check_renderer_name

    name = check_renderer_name(renderer)
    if name == "warp":
        return None
    check_trained(name, track, frames=("train",))
    model = session.models.model
    if name == "warp+refine":
        from dfm.render.neural.checkpoint import load_refiner
        from dfm.render.neural.refiner import MouthRefiner, refiner_inputs

        net, card = load_refiner(trained_renderer(track, "refiner", ("train",)))
        _check_split(card, split)
        refiners: dict[str, MouthRefiner] = {}

        def refine(setting, warp, t, target, reposed, out):
            r = refiners.setdefault(setting, MouthRefiner(net, model, track.identity))
            e = warp.target_expression(t, target, 1.0)
            return r.apply(t, out, refiner_inputs(r, warp, t, out, e), 1.0)

        return refine

    from dfm.render.neural.checkpoint import load_generator
    from dfm.render.neural.renderer import NeuralRenderer

    g, card = load_generator(trained_renderer(track, "neural", ("train",)))
    _check_split(card, split)
    renderers: dict[str, NeuralRenderer] = {}

    def neural(setting, warp, t, target, reposed, out):
        r = renderers.get(setting)
        if r is None:
            r = renderers[setting] = NeuralRenderer(model, track, g, sigma=float(card.get("crop_sigma", 3.0)))
        return r.render_frame(t, np.asarray(reposed), target, 1.0)

    return neural


def _check_split(card: dict, split: float) -> None:
    from dfm.errors import InputError

    if abs(float(card.get("split", 0.7)) - float(split)) > 1e-9:
        raise InputError(f"the trained model used split {card.get('split')}, the evaluation {split}; train it again "
                         f"with the same split")
