"""`make demo`: the main job on the default sample clip (the asset store's `sample-video`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dfm.app.cli import main as cli_main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dfm.app.demo")
    p.add_argument("--output", type=Path, default=Path("out/demo"))
    args = p.parse_args(argv)
    from dfm.assets import AssetStore

    video = AssetStore.from_env().path("sample-video")
    print(f"sample clip: {video}")
    rc = cli_main(["analyze", str(video)])
    if rc:
        return rc
    return cli_main(["inspect", str(video), "-o", str(args.output / "inspect"), "--overwrite"])


if __name__ == "__main__":
    sys.exit(main())
