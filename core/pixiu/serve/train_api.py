"""Training from the browser: the page at `/train` and the admin routes under `/v1/train` that upload data, start
`pixiu domain train` as a child of the server (`pixiu.serve.training_jobs`), show its progress and console output,
cancel it and resume it. Every `/v1/train` route needs the admin token, as the adapter routes do."""

from __future__ import annotations

from typing import Any, Literal, get_args

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from pixiu.config import TrainArgs
from pixiu.paths import pixiu_home
from pixiu.plugins import get_domains
from pixiu.serve.admin import require_admin
from pixiu.serve.http import ApiError
from pixiu.serve.training_jobs import JobRefused, TrainingJobs, data_files, store_upload

UPLOAD_PATH = "/v1/train/uploads/"
"""Uploads stream past the server's body limit and are bounded by `upload_limit` instead."""
METHODS = get_args(TrainArgs.model_fields["method"].annotation)
"""The objectives `pixiu domain train --method` takes."""

router = APIRouter(dependencies=[Depends(require_admin)])  # checked before the body is read or validated
page = APIRouter()


class TrainStart(BaseModel):
    """`POST /v1/train/jobs`: what `pixiu domain train` gets; each field left out keeps the recipe's value."""

    model_config = ConfigDict(extra="forbid")
    domain: str = Field(min_length=1, max_length=100)
    """An installed domain (GET /v1/train/options)."""
    base: str | None = Field(None, min_length=1, max_length=1000)
    """Base model, as `--base` takes it [default: the recipe's]."""
    data: str | None = Field(None, min_length=1, max_length=1000)
    """A .jsonl/.json file, relative to PIXIU_HOME [default: the domain's sample data]."""
    method: Literal[METHODS] | None = None  # type: ignore[valid-type]
    """The objective (`--method`)."""
    max_steps: int | None = Field(None, gt=0, le=1_000_000)
    """Optimiser steps (`--max-steps`)."""
    lr: float | None = Field(None, gt=0, le=1)
    """Learning rate (`train.lr`)."""
    lora_r: int | None = Field(None, gt=0, le=1024)
    """LoRA rank (`lora.r`)."""
    eval_records: int | None = Field(None, ge=0, le=100_000)
    """Records held out and scored, base vs adapter (`data.eval_records`)."""
    settings: list[str] = Field(default_factory=list, max_length=32)
    """More recipe keys as `--set` takes them, e.g. `train.save_every=10`."""

    def overrides(self) -> list[str]:
        """The `--set KEY=VALUE` strings: the named settings first, then `settings`."""
        named = {"train.lr": self.lr, "lora.r": self.lora_r, "data.eval_records": self.eval_records}
        return [f"{key}={value}" for key, value in named.items() if value is not None] + self.settings


def install(app: FastAPI, max_running: int = 1, upload_limit: int = 64 << 20) -> None:
    """Add the training page and routes to `app`, with at most `max_running` runs at once and uploads of at most
    `upload_limit` bytes; running jobs are interrupted (and keep their checkpoints) when the server stops."""
    jobs = TrainingJobs(max_running)
    app.state.training, app.state.upload_limit = jobs, upload_limit
    app.router.on_shutdown.append(jobs.shutdown)
    app.include_router(page)
    app.include_router(router)


def _jobs(request: Request) -> TrainingJobs:
    """The app's training jobs."""
    return request.app.state.training


def _refused(exc: JobRefused) -> ApiError:
    """The HTTP error for a refused job."""
    kinds = {404: "not_found_error", 409: "conflict_error", 413: "invalid_request_error"}
    return ApiError(exc.status, str(exc), type=kinds.get(exc.status, "invalid_request_error"))


@page.get("/train", include_in_schema=False)
async def train_page() -> FileResponse:
    """The training page: start, watch, cancel and resume runs (it asks for the admin token)."""
    from pixiu.serve.app import PAGE_POLICY, STATIC  # app.py imports this module to install it

    return FileResponse(STATIC / "train.html", headers={"Content-Security-Policy": PAGE_POLICY})


@router.get("/v1/train/options")
async def options(request: Request) -> dict[str, Any]:
    """What the form offers: installed domains, data files in PIXIU_HOME, runs that can resume, the served base,
    methods and the upload limit."""
    domains = [{"name": d.name, "description": d.description, "version": d.version} for d in get_domains().values()]
    return {
        "domains": sorted(domains, key=lambda d: d["name"]),
        "data": await run_in_threadpool(data_files),
        "resumable": await run_in_threadpool(_jobs(request).resumable),
        "base": request.app.state.server.base,
        "methods": list(METHODS),
        "upload_limit": request.app.state.upload_limit,
        "home": str(pixiu_home()),
    }


@router.put(UPLOAD_PATH + "{filename:path}")
async def upload(filename: str, request: Request) -> JSONResponse:
    """Store the request body as PIXIU_HOME/uploads/NAME (sanitised; -2, -3... when taken); 413 over the limit."""
    try:
        path = await store_upload(filename, request.stream(), request.app.state.upload_limit)
    except JobRefused as exc:
        raise _refused(exc) from exc
    relative = str(path.relative_to(pixiu_home()))
    return JSONResponse({"file": relative, "bytes": path.stat().st_size}, status_code=201)


@router.get("/v1/train/jobs")
async def list_jobs(request: Request) -> dict[str, Any]:
    """The jobs this server started, newest first."""
    jobs = _jobs(request)
    summaries = await run_in_threadpool(lambda: [job.summary() for job in jobs.jobs.values()])
    return {"data": sorted(summaries, key=lambda s: s["started"], reverse=True)}


@router.post("/v1/train/jobs")
async def start_job(body: TrainStart, request: Request) -> JSONResponse:
    """Start `pixiu domain train` with these settings; 404 unknown domain, 400 bad setting, 409 busy."""
    jobs = _jobs(request)
    try:
        job = await run_in_threadpool(
            jobs.start,
            body.domain,
            base=body.base,
            data=body.data,
            method=body.method,
            max_steps=body.max_steps,
            overrides=body.overrides(),
        )
    except JobRefused as exc:
        raise _refused(exc) from exc
    return JSONResponse(job.summary(), status_code=201)


@router.get("/v1/train/jobs/{name}")
async def get_job(name: str, request: Request, offset: int = 0) -> dict[str, Any]:
    """A job's progress and its console output from byte `offset` on (`log`, and `offset` to ask from next)."""
    jobs = _jobs(request)
    try:
        job = jobs.get(name)
    except JobRefused as exc:
        raise _refused(exc) from exc
    log, after = await run_in_threadpool(job.read_log, max(offset, 0))
    return {**job.summary(), "log": log, "offset": after}


@router.post("/v1/train/jobs/{name}/cancel")
async def cancel_job(name: str, request: Request) -> dict[str, Any]:
    """Interrupt a running job (SIGINT, then SIGTERM after a grace period); it stays resumable from its checkpoint."""
    jobs = _jobs(request)
    try:
        return jobs.cancel(name).summary()
    except JobRefused as exc:
        raise _refused(exc) from exc


@router.post("/v1/train/jobs/{name}/resume")
async def resume_job(name: str, request: Request) -> JSONResponse:
    """Continue the interrupted run `name` (of PIXIU_HOME/runs, started here or in a terminal) with `--resume`."""
    jobs = _jobs(request)
    try:
        job = await run_in_threadpool(jobs.resume, name)
    except JobRefused as exc:
        raise _refused(exc) from exc
    return JSONResponse(job.summary(), status_code=201)
