"""Imported once by the fork server that starts a local pool's workers (`LocalExecutor`): the modules
an analysis worker needs. Each worker forked from that server then has them loaded, where a spawned
worker imported them itself (~0.45 s of CPU each: numpy, OpenCV, MediaPipe's Python side, h5py and
dfm's tracking, affect and video modules), on the cores its siblings are starting on. The worker
imports the pipeline's own module (dfm.pipelines.analyze_chunks, a few ms on top of these) itself.

Imports only: nothing here may start a thread or open a native runtime (a MediaPipe landmarker, a numba
threading layer), which the forked workers could not inherit safely. Whatever a worker needs beyond this
(the renderer, the compiled kernels) it imports itself.
"""

import cv2  # noqa: F401
import h5py  # noqa: F401  (the affect model's weights)
import numpy  # noqa: F401

from dfm.face.tracking import import_mediapipe

import_mediapipe()

import dfm.affect.crops  # noqa: E402,F401
import dfm.affect.fer  # noqa: E402,F401
import dfm.affect.registry  # noqa: E402,F401
import dfm.face.subject  # noqa: E402,F401
import dfm.io.video  # noqa: E402,F401
