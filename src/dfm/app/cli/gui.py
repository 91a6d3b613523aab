"""`dfm gui`: start the web tool (FastAPI under uvicorn) on this machine."""

from __future__ import annotations

import argparse
import sys
import threading
import webbrowser

from dfm.errors import DfmError

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def register(sub) -> None:
    g = sub.add_parser("gui", help="start the web tool: open a video, mark emotions on a timeline, reenact")
    g.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    g.add_argument("--port", type=int, default=7860)
    g.add_argument("--max-upload-mb", type=float, default=2048, help="largest accepted upload (default 2048 MB)")
    g.add_argument("--open", action="store_true", help="open the page in the default browser")
    from dfm.app.cli.parallel_args import add_parallel_arguments

    add_parallel_arguments(g)  # the job runner's Session: one job's chunks over these processes / Ray
    g.set_defaults(handler=cmd_gui)


def cmd_gui(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from dfm.app.web.config import Settings
        from dfm.app.web.main import create_app
    except ImportError as e:
        raise DfmError(f"the web tool needs the 'web' extra ({e.name} is missing): pip install 'dfm[web]'") from None
    if not 0 < args.port < 65536:
        raise DfmError(f"--port must be in 1..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise DfmError(f"--max-upload-mb must be positive, got {args.max_upload_mb:g}")
    settings = Settings.from_env(workspace=args.workspace, host=args.host, port=args.port,
                                 max_upload_mb=args.max_upload_mb, chunk_workers=args.workers,
                                 ray=True if args.ray is not None else None, ray_address=args.ray or None)
    if args.host not in LOCAL_HOSTS:
        print(f"dfm: warning: listening on {args.host}: anyone on the network can reach the web tool and its videos",
              file=sys.stderr)
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/"
    print(f"DFM web tool: {url}  (workspace {settings.workspace}; Ctrl+C stops it)", file=sys.stderr)
    if args.open:
        threading.Timer(1.5, webbrowser.open, (url,)).start()
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="warning")
    return 0
