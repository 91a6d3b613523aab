"""Liveness for the page (it shows "server gone" when this stops answering)."""

from __future__ import annotations

from fastapi import APIRouter

from dfm import __version__

router = APIRouter(tags=["health"])


@router.get("/api/health")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}
