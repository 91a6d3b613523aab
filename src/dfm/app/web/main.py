"""The web tool's app: `create_app(settings)` builds the FastAPI app; its lifespan builds the one warm
Session, the project and job stores and the job runner (jobs a previous server left running are marked
interrupted), and stops the runner on shutdown. The page's files are served from static/."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from dfm import __version__
from dfm.app.web.api import api_router
from dfm.app.web.config import Settings
from dfm.app.web.limits import UploadLimit
from dfm.app.web.projects import ProjectStore, UnknownProject
from dfm.errors import DfmError, InputError

STATIC = Path(__file__).parent / "static"


def build_state(settings: Settings, session: Any = None):
    from dfm.app.web.executors import make_executors
    from dfm.app.web.state import WebState
    from dfm.jobs import JobStore, LocalRunner

    owned = session is None
    if owned:
        from dfm.pipelines.session import Session

        session = Session(workspace=settings.workspace, progress=False, parallel=settings.parallel)
        session.models  # load the face models now: the first analysis and preview should not wait for them
    projects = ProjectStore(settings.projects_dir)
    jobs = JobStore(settings.jobs_dir)
    state = WebState(settings=settings, session=session, projects=projects, jobs=jobs, runner=None, owns_session=owned)
    warm = None if not settings.warm_preview else (lambda project: state.previewer(project).warm_up())
    state.runner = LocalRunner(jobs, make_executors(session, projects, warm), workers=settings.workers)
    return state


def create_app(settings: Settings | None = None, session: Any = None) -> FastAPI:
    """The app over `settings` (default: from the environment); `session` replaces the one the lifespan
    would build (tests share one)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.web = build_state(settings, session)
        try:
            yield
        finally:
            app.state.web.close()

    app = FastAPI(title="DFM web tool", version=__version__, lifespan=lifespan,
                  description="Edit the emotions on a face in a video: projects, edits, preview, render jobs.")
    app.add_middleware(UploadLimit, max_bytes=settings.max_upload_bytes)

    @app.exception_handler(UnknownProject)
    async def unknown(_: Request, e: UnknownProject) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(InputError)
    async def bad_input(_: Request, e: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(DfmError)
    async def dfm_error(_: Request, e: DfmError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=400)

    app.include_router(api_router)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return app
