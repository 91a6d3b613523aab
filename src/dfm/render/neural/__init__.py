"""The neural renderer (DESIGN "Renderers", item 2): Head2Head++-style conditional video GAN trained per
video, and the mouth refiner that repairs the warp renderer's inner mouth.

conditioning.py (crops, NMFC, eye image) -> generator.py / discriminators.py / losses.py -> training.py
(one step, state) -> renderer.py (inference, composite.py pastes the crop back); refiner.py (warp+refine).
Training per video is `dfm.pipelines.renderer_train`.
"""
