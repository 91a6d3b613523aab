"""`make demo`: the main job on the default sample clip (the asset store's `sample-video`).

Analyses the Pexels clip (crying -> surprise -> laughing), writes the inspection outputs, then edits it:
happy over the crying part, sad over the laughing part. Writes the output video, its side-by-side
comparison, the disclosure sidecar, and a before/after contact sheet PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEMO_EDITS = ("happy:high:0.2-2.4", "sad:high:14.0-19.5")  # happy over the crying part before the hand comes up
SHEET_TIMES = (0.9, 1.4, 2.0, 15.0, 17.0, 18.5)


def main(argv: list[str] | None = None) -> int:
    from dfm.app.cli.main import main as cli_main

    p = argparse.ArgumentParser(prog="python -m dfm.app.cli.demo")
    p.add_argument("--output", type=Path, default=Path("out/demo"))
    args = p.parse_args(argv)
    from dfm.assets import AssetStore

    video = AssetStore.from_env().path("sample-video")
    out = args.output
    print(f"sample clip: {video}")
    steps = [
        ["analyze", str(video)],
        ["inspect", str(video), "-o", str(out / "inspect"), "--overwrite"],
        ["edit", str(video), *[a for e in DEMO_EDITS for a in ("--edit", e)], "-o", str(out / "edited.mp4"),
         "--side-by-side", str(out / "side_by_side.mp4"), "--overwrite"],
    ]
    for argv_ in steps:
        rc = cli_main(argv_)
        if rc:
            return rc
    from dfm.viz.contact import before_after_sheet
    from dfm.io.video import probe_video

    fps = probe_video(video).fps
    sheet = before_after_sheet(video, out / "edited.mp4", [int(t * fps) for t in SHEET_TIMES], out / "before_after.png",
                               labels=["happy:high"] * 3 + ["sad:high"] * 3)
    print(f"before/after contact sheet: {sheet}")
    print("\nThe same edits in the web tool (timeline, live preview, side-by-side playback):\n"
          "  .venv/bin/dfm gui --open        (or: make gui), then open http://127.0.0.1:7860/ and drop the clip in")
    return 0


if __name__ == "__main__":
    sys.exit(main())
