"""The API's routers, in one list."""

from fastapi import APIRouter

from dfm.app.web.routes import edits, health, jobs, persons, projects, renderers

api_router = APIRouter()
for module in (health, projects, edits, renderers, persons, jobs):
    api_router.include_router(module.router)
