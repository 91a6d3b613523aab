"""The owed GPU check of the neural renderer: train it at 256 px on the Pexels clip on CUDA for a bounded
time, then measure setting-A APD / Face-APD / Mouth-APD on the held-out 30 % and steps/s.

Two phases, so the GPU machine needs only torch (CUDA), numpy, opencv and safetensors, not MediaPipe:

1. prepare (CPU, here; ~1-3 min): analyse the clip, build the conditioning of every frame at 256 px (NMFC of
   the FITTED expression = setting A, eye image, aligned crop, face and mouth-region masks) and write it
   encoded (JPEG q95 / PNG) to one .npz (~30-40 MB at 256 px for the 472-frame clip; it holds the person's face: never commit it):
       python benchmarks/gpu_neural_renderer.py prepare --video PEXELS.mp4 --out bench_data/pexels_256.npz
2. run (CUDA): bash benchmarks/gpu_neural_renderer.sh bench_data/pexels_256.npz MINUTES
   trains on the first 70 % (the protocol's split) with the CUDA configuration of
   GeneratorConfig.for_size(256, "cuda") for MINUTES of wall time, then renders the test frames in
   order (fed its own outputs, as in an edit) and writes $OUT/gpu_neural_results.json and sample PNGs.

The metrics are those of dfm.eval.metrics (mean L2 over RGB, 0..255) on the renderer's own 256 x 256
similarity-aligned crop with the NMFC face / mouth-region masks of the fitted test mesh; the
protocol's crop box (dfm evaluate) is placed from the landmarks without rotation, so the figures are
close to, not identical with, `dfm evaluate --renderer neural`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np


def prepare(video: Path, out: Path, size: int = 256, split: float = 0.7) -> None:
    import cv2

    from dfm.io.video import iter_frames
    from dfm.pipelines.session import Session
    from dfm.render.neural.conditioning import Conditioning

    s = Session(progress=True)
    track = s.analyze(video)
    cond = Conditioning(s.models.model, track, size)
    enc = {k: [] for k in ("nmfc", "eyes", "real", "face", "mouth", "fg")}
    mouth_c = np.zeros((track.n_frames, 2), np.float32)
    for f in iter_frames(video):
        t = f.index
        if not track.valid[t]:
            for k in enc:
                enc[k].append(np.frombuffer(b"", np.uint8))
            continue
        fc = cond.frame(t)
        png = lambda a: np.frombuffer(cv2.imencode(".png", a)[1].tobytes(), np.uint8)  # noqa: E731
        jpg = lambda a: np.frombuffer(cv2.imencode(".jpg", a, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes(), np.uint8)  # noqa: E731
        enc["nmfc"].append(jpg((fc.nmfc * 255 + 0.5).astype(np.uint8)))
        enc["eyes"].append(png((fc.eyes * 255 + 0.5).astype(np.uint8)))
        real = cond.crop(t, f.image)
        enc["real"].append(jpg(real))
        enc["face"].append(png(fc.face.astype(np.uint8) * 255))
        enc["mouth"].append(png(fc.mouth_region.astype(np.uint8) * 255))
        enc["fg"].append(png(fc.foreground.astype(np.uint8) * 255))
        mouth_c[t] = fc.mouth_centre
    arrays = {}
    for k, v in enc.items():
        lens = np.array([len(x) for x in v], np.int64)
        arrays[f"{k}_bytes"] = np.concatenate(v) if len(v) else np.zeros(0, np.uint8)
        arrays[f"{k}_len"] = lens
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, valid=np.asarray(track.valid, bool), mouth=mouth_c, size=np.array([size]), split=np.array([split]),
             **arrays)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {track.n_frames} frames)")


def _decode(z, key: str, flags: int) -> list:
    import cv2

    data, lens = z[f"{key}_bytes"], z[f"{key}_len"]
    offs = np.concatenate([[0], np.cumsum(lens)])
    return [None if n == 0 else cv2.imdecode(data[a:a + n], flags) for a, n in zip(offs[:-1], lens)]


def run(data: Path, minutes: float, out: Path, batch: int, device: str = "cuda") -> dict:
    import cv2
    import torch

    from dfm.render.neural.generator import GeneratorConfig, generator_input
    from dfm.render.neural.training import NeuralTrainer, TrainConfig, TrainingData

    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    t_load = time.perf_counter()
    z = np.load(data)
    size, split = int(z["size"][0]), float(z["split"][0])
    valid = z["valid"]
    n = len(valid)
    nm = _decode(z, "nmfc", cv2.IMREAD_COLOR)
    ey = _decode(z, "eyes", cv2.IMREAD_COLOR)
    real = _decode(z, "real", cv2.IMREAD_COLOR)
    face = _decode(z, "face", cv2.IMREAD_GRAYSCALE)
    mouth = _decode(z, "mouth", cv2.IMREAD_GRAYSCALE)
    fg = _decode(z, "fg", cv2.IMREAD_GRAYSCALE)
    blank3, blank1 = np.zeros((size, size, 3), np.uint8), np.zeros((size, size), np.uint8)
    fill3 = lambda L: np.stack([blank3 if a is None else a for a in L])  # noqa: E731  (BGR order kept: consistent)
    fill1 = lambda L: np.stack([blank1 if a is None else a for a in L])  # noqa: E731
    cond = np.concatenate([fill3(nm), fill3(ey)], -1)
    realv, facev, mouthv, fgv = fill3(real), fill1(face) > 127, fill1(mouth) > 127, fill1(fg) > 127
    n_train = int(np.floor(split * n))
    train = np.arange(n_train)
    td = TrainingData(cond=cond[train], real=realv[train], foreground=fgv[train], mouth=z["mouth"][train],
                      frames=train, valid=valid[train])
    if device == "cuda":
        cfg = TrainConfig(generator=GeneratorConfig.for_size(size, "cuda"), d_channels=64, batch=batch)
        torch.backends.cudnn.benchmark = True
    else:  # a dry run of this script on a CPU (tiny networks), before spending device time
        cfg = TrainConfig(generator=GeneratorConfig(size=size, base_channels=8, max_channels=32, n_res=2), d_channels=8,
                          batch=2)
    trainer = NeuralTrainer(cfg, td, device=device)
    t_load = time.perf_counter() - t_load
    t0 = time.perf_counter()
    deadline = t0 + minutes * 60
    history = []
    while time.perf_counter() < deadline:
        losses = trainer.step()
        if trainer.step_count % (50 if device == "cuda" else 5) == 0:
            sync()
            history.append({"step": trainer.step_count, "seconds": time.perf_counter() - t0, **losses})
            print(json.dumps(history[-1]), flush=True)
    sync()
    train_s = time.perf_counter() - t0

    # setting A on the test frames, rendered in order and fed its own outputs
    g = trainer.G.eval()
    outs, rows = {}, []
    with torch.no_grad():
        prev: list = []
        for t in range(n_train, n):
            if not valid[t]:
                prev = []
                continue
            cs = [cond[k] if (k >= 0 and valid[k]) else cond[t] for k in (t - 2, t - 1, t)]
            ps = prev[-2:] if len(prev) >= 2 else [realv[n_train - 2], realv[n_train - 1]]  # the last training frames
            c = torch.from_numpy(np.stack(cs)).float().div(255).movedim(-1, 1)[None].to(device)
            p = torch.from_numpy(np.stack(ps)).float().div(127.5).sub(1).movedim(-1, 1)[None].to(device)
            o = g(generator_input(c, p))[0].movedim(0, -1).cpu().numpy()
            crop = ((o + 1) * 127.5 + 0.5).clip(0, 255).astype(np.uint8)
            prev = (prev + [crop])[-2:]
            d = np.linalg.norm(crop.astype(np.float64) - realv[t].astype(np.float64), axis=-1)
            rows.append({"frame": t, "apd": float(d.mean()), "face_apd": float(d[facev[t]].mean()) if facev[t].any() else None,
                         "mouth_apd": float(d[mouthv[t]].mean()) if mouthv[t].any() else None})
            outs[t] = crop
    mean = lambda k: float(np.mean([r[k] for r in rows if r[k] is not None]))  # noqa: E731
    res = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu (dry run)", "torch": torch.__version__, "size": size,
           "config": cfg.to_dict(), "train_frames": n_train, "test_frames": len(rows), "minutes": minutes,
           "steps": trainer.step_count, "train_seconds": train_s, "steps_per_second": trainer.step_count / train_s,
           "frames_per_second_train": trainer.step_count * cfg.batch * cfg.seq_len / train_s,
           "load_seconds": t_load, "setting_A": {"apd": mean("apd"), "face_apd": mean("face_apd"),
                                                 "mouth_apd": mean("mouth_apd")},
           "history": history}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_neural_results.json").write_text(json.dumps(res, indent=2))
    pick = sorted(outs)[:: max(len(outs) // 6, 1)][:6]
    if pick:
        grid = np.concatenate([np.concatenate([cond[t][..., :3], outs[t], realv[t]], 0) for t in pick], 1)
        # columns: test frames; rows: NMFC, generated, real (arrays are RGB; imwrite wants BGR)
        cv2.imwrite(str(out / "gpu_neural_test_samples.png"), cv2.cvtColor(cv2.resize(grid, None, fx=0.5, fy=0.5),
                                                                           cv2.COLOR_RGB2BGR))
    print(json.dumps({k: v for k, v in res.items() if k != "history"}, indent=2))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("bench_data/pexels_256.npz"))
    p.add_argument("--size", type=int, default=256)
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, default=Path("bench_data/pexels_256.npz"))
    r.add_argument("--minutes", type=float, default=6.0)
    r.add_argument("--batch", type=int, default=8)
    r.add_argument("--out", type=Path, default=Path("out"))
    r.add_argument("--device", default="cuda", choices=("cuda", "cpu"), help="cpu: a dry run of the script")
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare(a.video, a.out, a.size)
    else:
        run(a.data, a.minutes, a.out, a.batch, a.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
