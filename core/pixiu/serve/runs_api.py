"""The runs pages and their read-only API: every run under PIXIU_HOME/runs and in the adapter registry, one run
(its curve, scores, cost and report), its predictions beside the gold answers, several runs compared, and a live
stream of a training's train_log.jsonl, whichever process (terminal or server) trains it.

Runs are named by id and looked up among the listed runs (`pixiu.run_index.find_run`), never joined to a path,
so a request reaches no file outside them. No token is needed: nothing here writes.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from pixiu import run_index
from pixiu.errors import PixiuError
from pixiu.runs import LOG_FILE, REPORT_FILE
from pixiu.serve.http import ApiError

router = APIRouter()
STATIC = Path(__file__).with_name("static")
PAGE_POLICY = "default-src 'self'; frame-ancestors 'none'"
"""As the chat page's: the runs pages load only their own files."""
REPORT_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'none'"
"""A run's report.html is one file with its own style and PNG charts inline, and no script at all."""
POLL_SECONDS = 0.5
"""How often the live stream looks for new log lines."""
KEEPALIVE_SECONDS = 15.0
"""A comment line this often keeps proxies from closing a quiet stream (a slow step, a long evaluation)."""


@router.get("/runs", include_in_schema=False)
async def runs_page() -> FileResponse:
    """The runs pages: the list, one run (`?run=ID`) and a comparison (`?compare=ID,ID`)."""
    return FileResponse(STATIC / "runs.html", headers={"Content-Security-Policy": PAGE_POLICY})


@router.get("/v1/runs")
async def list_runs() -> dict[str, Any]:
    """Every run, the most recently written first."""
    return {"object": "list", "data": await run_in_threadpool(run_index.list_runs)}


@router.get("/v1/runs/compare")
async def compare(runs: str = Query(description="Two or more run ids, comma-separated")) -> dict[str, Any]:
    """Several runs side by side: config diff, score table and loss curves."""
    ids = list(dict.fromkeys(r for r in runs.split(",") if r))
    if len(ids) < 2:
        raise ApiError(400, f"runs: give two or more different run ids, comma-separated (got {runs!r})", param="runs")
    return await _answer(run_index.compare_runs, ids)


@router.get("/v1/runs/{run_id}")
async def get_run(run_id: str) -> dict[str, Any]:
    """One run, or 404."""
    return await _answer(run_index.run_detail, run_id)


@router.get("/v1/runs/{run_id}/predictions")
async def predictions(
    run_id: str, offset: int = Query(0, ge=0), limit: int = Query(20, ge=1, le=run_index.MAX_PAGE)
) -> dict[str, Any]:
    """A page of the run's held-out predictions beside the gold answers."""
    return await _answer(run_index.predictions_page, run_id, offset, limit)


@router.get("/v1/runs/{run_id}/report", include_in_schema=False)
async def report(run_id: str) -> FileResponse:
    """The run's report.html, as `pixiu domain report` writes it."""
    folder = await _answer(run_index.find_run, run_id)
    if not (folder / REPORT_FILE).is_file():
        raise ApiError(404, f"run {run_id} has no {REPORT_FILE} yet; write it with `pixiu adapters report {folder}`")
    return FileResponse(folder / REPORT_FILE, headers={"Content-Security-Policy": REPORT_POLICY})


@router.get("/v1/runs/{run_id}/log")
async def log_stream(run_id: str) -> StreamingResponse:
    """Server-sent events: each train_log.jsonl row (`data: {...}`) from the first, new ones as the run writes
    them; `event: reset` when a resumed run rewrote the log, and `event: end` with the status once the run stops
    training."""
    folder = await _answer(run_index.find_run, run_id)
    events = tail_log(folder, lambda: run_index.run_status(folder))
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def tail_log(folder: Path, status: Callable[[], str]) -> AsyncIterator[str]:
    """The events of `log_stream`: read whole lines from where the last read ended, until `status()` is no longer
    `training` and the log has been read to its end."""
    path, inode, offset, quiet = folder / LOG_FILE, None, 0, 0.0
    while True:
        ended = status() != "training"  # asked before reading, so the last rows are read after the run stopped
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            stat = None
        if stat is not None and (stat.st_ino != inode or stat.st_size < offset):
            if inode is not None:  # a resumed run rewrites the log without the steps it redoes
                yield "event: reset\ndata: {}\n\n"
            inode, offset = stat.st_ino, 0
        rows: list[str] = []
        if stat is not None and stat.st_size > offset:
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            whole = chunk[: chunk.rfind(b"\n") + 1]  # a half-written last line waits for the next read
            offset += len(whole)
            rows = [line for line in whole.decode("utf-8").splitlines() if line.strip()]
        for row in rows:
            yield f"data: {json.dumps(json.loads(row))}\n\n"
        if ended:
            yield f"event: end\ndata: {json.dumps({'status': status()})}\n\n"
            return
        quiet = 0.0 if rows else quiet + POLL_SECONDS
        if quiet >= KEEPALIVE_SECONDS:
            quiet = 0.0
            yield ": still training\n\n"
        await asyncio.sleep(POLL_SECONDS)


async def _answer(work: Callable[..., Any], *args: Any) -> Any:
    """`work(*args)` off the event loop; a PixiuError (an unknown run, say) becomes a 404."""
    try:
        return await run_in_threadpool(work, *args)
    except PixiuError as exc:
        raise ApiError(404, str(exc), param="run") from exc
