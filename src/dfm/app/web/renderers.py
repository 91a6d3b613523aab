"""The renderer choice of the web tool (`dfm edit|preview --renderer`): which renderers a project can use
now, and the one line naming the exact command that trains a missing model.

The check is the CLI's (`dfm.pipelines.renderer_train.check_trained`); its message names
`dfm renderer train VIDEO ...`, and here VIDEO is the project's own copy of the video, with the
`--subject` and `--workspace` that make the trained model land where this server looks for it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from fastapi import HTTPException

from dfm.errors import InputError
from dfm.render.registry import RENDERERS, TRAIN_COMMANDS, RendererNotTrained, check_renderer_name

# the response header that tells the page a 422 is about the renderer choice (its banner), not the edits
ERROR_HEADER = {"X-DFM-Error": "renderer"}


@dataclass
class RendererState:
    name: str
    trained: bool  # True for warp (it needs no training)
    message: str | None  # None when usable; else the one line with the training command


def train_command(name: str, project, workspace, default_workspace) -> str:
    """`dfm renderer train <the project's video> [--refiner] [--subject S] [--workspace W]`."""
    command = TRAIN_COMMANDS[name].replace("VIDEO", shlex.quote(str(project.input)))
    if project.subject != "largest":
        command += f" --subject {shlex.quote(project.subject)}"
    if workspace != default_workspace:
        command += f" --workspace {shlex.quote(str(workspace))}"
    return command


def renderer_state(name: str, project, track, workspace) -> RendererState:
    """`workspace`: the Session's (the trained models sit beside its cached tracks)."""
    from dfm.pipelines.analyze import default_workspace
    from dfm.pipelines.renderer_train import check_trained

    try:
        check_trained(name, track)
    except RendererNotTrained:
        command = train_command(name, project, Path(workspace).expanduser().resolve(),
                                default_workspace().expanduser().resolve())
        return RendererState(name, False, f"the {name} renderer has no trained model for this video; "
                                          f"train it with `{command}`")
    return RendererState(name, True, None)


def checked_renderer(name: str, project, track, workspace) -> str:
    """The canonical renderer name, usable for this project; 422 (with ERROR_HEADER) otherwise."""
    try:
        name = check_renderer_name(name)
    except InputError as e:
        raise HTTPException(status_code=422, detail=str(e), headers=ERROR_HEADER) from None
    state = renderer_state(name, project, track, workspace)
    if state.message is not None:
        raise HTTPException(status_code=422, detail=state.message, headers=ERROR_HEADER)
    return name


def renderer_states(project, track, workspace) -> list[RendererState]:
    return [renderer_state(name, project, track, workspace) for name in RENDERERS]
