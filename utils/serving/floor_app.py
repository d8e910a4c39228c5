"""The framework's floor: the smallest FastAPI app that answers ``POST /predict`` like the course's.

``python -m utils.loadtest --floor`` serves this (one pydantic field, a short JSON answer, no model, no
guard, no access log) on the same uvicorn and measures it like a model, so that the course server's
figures can be read against what FastAPI and uvicorn alone cost on the same machine.
"""
from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI(title="floor", docs_url=None, redoc_url=None, openapi_url=None)


class _Plot(BaseModel):
    text: str


@app.post("/predict")
async def predict(req: _Plot) -> dict:
    return {"model": "floor", "labels": [], "characters": len(req.text)}


@app.get("/health")
async def health() -> dict:
    return {"status": "ok", "model": "floor"}
