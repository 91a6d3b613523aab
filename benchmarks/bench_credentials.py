"""Content Credentials cost: signing an MP4 (copy + C2PA manifest + hash binding + verify-after-sign) and
verifying it, on the sample clip and on a large synthetic lossless file.

    .venv/bin/python benchmarks/bench_credentials.py [VIDEO] [--mb 300]

Prints the library's load time, then seconds and MB/s per file size. The test signer is made in a temporary config folder. The
machine's load skews the timings: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dfm.edits import EditList, parse_edit_arg
from dfm.io.files import sha256_file
from dfm.io.video import VideoWriter
from dfm.provenance import read_credentials, resolve_identity
from dfm.provenance.job import EditCredentials

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = REPO.parent / "shared" / "data" / "videos" / "pexels_wolfganglanger_woman_emotions_01.mp4"


def big_clip(path: Path, megabytes: float) -> None:
    """Lossless 1080p noise: about 4 MB a frame, so the file is about `megabytes` MB."""
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8) for _ in range(4)]
    with VideoWriter(path, width=1920, height=1080, rate=25, lossless=True, preset="ultrafast", overwrite=True) as w:
        for i in range(max(1, round(megabytes / 4))):
            w.write(frames[i % 4])


def measure(video: Path, folder: Path) -> None:
    identity = resolve_identity(config_dir=folder / "config", env={})
    creds = EditCredentials(*identity, video=video, input_sha256=sha256_file(video),
                            edits=EditList([parse_edit_arg("happy:high:0.3-1.0")]), seed=0, disclosure="bench",
                            version="bench")
    out = folder / "signed.mp4"
    t = time.perf_counter()
    with creds.output(out) as unsigned:
        t_copy = time.perf_counter()
        shutil.copyfile(video, unsigned)
        t_copy = time.perf_counter() - t_copy
    t_sign = time.perf_counter() - t - t_copy
    t = time.perf_counter()
    state = read_credentials(out).state
    t_read = time.perf_counter() - t
    mb = out.stat().st_size / 1e6
    print(f"{video.name}: {mb:.1f} MB  sign {t_sign:.2f} s ({mb / t_sign:.0f} MB/s)  "
          f"verify {t_read:.2f} s ({mb / t_read:.0f} MB/s)  -> {state}")
    out.unlink()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("video", nargs="?", type=Path, default=DEFAULT_VIDEO)
    p.add_argument("--mb", type=float, default=300, help="size of the synthetic large file")
    args = p.parse_args()
    t = time.perf_counter()
    import c2pa  # noqa: F401  (the native library: loaded once per process, on the first signature)

    print(f"c2pa library load {time.perf_counter() - t:.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.video.exists():
            measure(args.video, folder)
        big = folder / "big.mp4"
        big_clip(big, args.mb)
        measure(big, folder)


if __name__ == "__main__":
    main()
