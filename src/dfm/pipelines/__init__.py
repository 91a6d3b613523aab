"""Whole jobs composed from the stages (DESIGN "The pipeline"): analyse a video, build a person, edit,
preview, evaluate. Pipelines import the stages (io, face, affect, decoder, edits, render, eval, viz,
provenance);
no stage imports a pipeline, and no pipeline imports the interfaces in `dfm.app`.

- `dfm.pipelines.session`: `Session`, the one API the CLI and the web tool call (components + warm caches).
- `dfm.pipelines.analyze`: video -> `FaceTrack` (track, fit, affect), cached by content hash.
- `dfm.pipelines.edit`: `edit_video` -> `EditResult` (output video + disclosure sidecar + job report).
- `dfm.pipelines.person`: person collections: add, dataset, train.
- `dfm.pipelines.evaluate`: `evaluate_video`, the self-reenactment evaluation run of `dfm evaluate`.
- `dfm.pipelines.verify`: `verify_video`, a video's Content Credentials + sidecar checked (`dfm verify`).
"""
