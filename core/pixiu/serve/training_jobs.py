"""Training runs the server starts for the web page: `pixiu domain train` as a real child process (so its run
folder is exactly a terminal run's), its output kept in PIXIU_HOME/train-jobs/RUN.log, a bounded number at a
time, cancelled with SIGINT (the run keeps its newest checkpoint and resumes) and SIGTERM if it does not stop.
Uploaded data files are stored under PIXIU_HOME/uploads with sanitised names."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixiu.checkpoint import list_checkpoints
from pixiu.config import load_config
from pixiu.errors import PixiuError
from pixiu.models import base_config
from pixiu.paths import pixiu_home, runs_dir
from pixiu.plugins import get_domain, get_model_sources
from pixiu.runs import LOG_FILE, RUN_FILE, new_run_dir, read_run_file

UPLOADS = "uploads"
"""Where uploaded data files go, relative to PIXIU_HOME."""
JOB_LOGS = "train-jobs"
"""Where each job's console output goes, relative to PIXIU_HOME (outside the run folder, which stays a terminal
run's)."""
DATA_FOLDERS = (UPLOADS, "data", "feedback")
"""The folders of PIXIU_HOME whose .jsonl/.json files the page offers as training data."""
DATA_SUFFIXES = (".jsonl", ".json")
UPLOAD_LIMIT = 64 << 20
"""Bytes an uploaded data file may have, at most."""
CANCEL_GRACE = 30.0
"""Seconds a cancelled run has to stop after SIGINT before it gets SIGTERM (and as long again before SIGKILL)."""
LOG_CHUNK = 64 << 10
"""Bytes of console output one poll returns, at most."""


class JobRefused(PixiuError):
    """A job that cannot start or be changed, with the HTTP status that says why (404, 409, 400)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Job:
    """One child `pixiu domain train`: its run folder (named after it), console log and process."""

    name: str
    domain: str
    run_dir: Path
    log_path: Path
    command: list[str]
    max_steps: int
    process: subprocess.Popen
    started: float = field(default_factory=time.time)
    cancelled: bool = False

    def status(self) -> str:
        """running, finished (exit 0), interrupted (cancelled or SIGINT: resumable from its checkpoint) or failed."""
        code = self.process.poll()
        if code is None:
            return "running"
        if code == 0:
            return "finished"
        return "interrupted" if self.cancelled or code in (130, -signal.SIGINT, -signal.SIGTERM) else "failed"

    def summary(self) -> dict[str, Any]:
        """The job as the API shows it: status, exit code, steps done of max_steps, last loss and tokens/s."""
        return {
            "name": self.name,
            "domain": self.domain,
            "status": self.status(),
            "exit_code": self.process.poll(),
            "started": self.started,
            "max_steps": self.max_steps,
            "resumable": bool(list_checkpoints(self.run_dir)) and self.status() == "interrupted",
            "command": self.command,
            **run_progress(self.run_dir),
        }

    def read_log(self, offset: int) -> tuple[str, int]:
        """The console output from byte `offset` (at most LOG_CHUNK bytes, whole lines) and the offset after it."""
        with self.log_path.open("rb") as handle:
            handle.seek(offset)
            chunk = handle.read(LOG_CHUNK)
        if len(chunk) == LOG_CHUNK and b"\n" in chunk:
            chunk = chunk[: chunk.rindex(b"\n") + 1]
        return chunk.decode("utf-8", errors="replace"), offset + len(chunk)


def run_progress(run_dir: Path) -> dict[str, Any]:
    """Steps done, the last loss and tokens/s so far, read from the run's train_log.jsonl (as a terminal run's
    would be); zeros before the first step."""
    path = run_dir / LOG_FILE
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line being written just now
                break
    if not rows:
        return {"step": 0, "loss": None, "tokens_per_second": None}
    seconds = sum(row.get("seconds", 0.0) for row in rows)
    tokens = sum(row.get("tokens", 0) for row in rows)
    return {
        "step": rows[-1]["step"],
        "loss": rows[-1].get("loss"),
        "tokens_per_second": round(tokens / seconds, 1) if seconds else None,
    }


class TrainingJobs:
    """The server's training children: at most `max_running` at a time, found again by run name."""

    def __init__(self, max_running: int = 1):
        self.max_running = max_running
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()

    def start(
        self,
        domain_name: str,
        *,
        base: str | None,
        data: str | None,
        method: str | None,
        max_steps: int | None,
        overrides: Sequence[str],
    ) -> Job:
        """Check the settings as `pixiu domain train` would (unknown domain, bad keys or values), then start it
        into a new run folder under PIXIU_HOME/runs.

        Raises:
            JobRefused: 404 for an unknown domain, 400 for a bad setting or data file, 409 when busy.
        """
        try:
            domain = get_domain(domain_name)
        except PixiuError as exc:
            raise JobRefused(404, str(exc)) from exc
        if base is not None:
            check_base(base)
        data_path = data_file(data) if data is not None else None
        values = {"base": base, "train.method": method, "train.max_steps": max_steps}
        values = {key: value for key, value in values.items() if value is not None}
        yaml_paths = [domain.default_config] if domain.default_config else []
        try:
            config = load_config(yaml_paths, overrides, values=values, domain=domain)
        except PixiuError as exc:
            raise JobRefused(400, str(exc)) from exc
        if config.train.devices > 1:
            raise JobRefused(400, "train.devices: the web page starts one process; use the terminal for several")
        flags = [f"--base={base}"] if base else []
        flags += [f"--data={data_path}"] if data_path else []
        flags += [f"--method={method}"] if method else []
        flags += [f"--max-steps={max_steps}"] if max_steps else []
        flags += [f"--set={override}" for override in overrides]
        with self.lock:
            self._check_room()
            run_dir = new_run_dir(domain.name)
            return self._spawn(domain.name, run_dir, config.train.max_steps, flags)

    def resume(self, name: str) -> Job:
        """Continue run `name` (a folder of PIXIU_HOME/runs) from its newest checkpoint with `--resume`.

        Raises:
            JobRefused: 404 for no such run, 409 when it (or another) is running, 400 when it cannot resume.
        """
        run_dir = run_folder(name)
        if not run_dir.is_dir():
            raise JobRefused(404, f"no run named {name!r} under {runs_dir()}")
        record = read_run_file(run_dir)
        if not record:
            raise JobRefused(400, f"run {name!r} stopped before training began (it has no {RUN_FILE}); start a new run")
        if record.get("status") == "finished":
            raise JobRefused(400, f"run {name!r} has finished; there is nothing to resume")
        if not list_checkpoints(run_dir):
            raise JobRefused(
                400, f"run {name!r} has no checkpoint yet, so it cannot resume; start a new run (train.save_every)"
            )
        max_steps = record.get("config", {}).get("train", {}).get("max_steps", 0)
        with self.lock:
            job = self.jobs.get(name)
            if job is not None and job.status() == "running":
                raise JobRefused(409, f"run {name!r} is training already")
            self._check_room()
            return self._spawn(str(record.get("domain")), run_dir, max_steps, ["--resume"])

    def cancel(self, name: str) -> Job:
        """Interrupt job `name` with SIGINT (it keeps its newest checkpoint); SIGTERM follows after CANCEL_GRACE
        seconds if it is still running, and SIGKILL as long after that."""
        job = self.get(name)
        if job.status() != "running":
            raise JobRefused(409, f"job {name!r} is not running (it is {job.status()})")
        job.cancelled = True
        job.process.send_signal(signal.SIGINT)
        threading.Thread(target=_escalate, args=(job.process,), name=f"cancel-{name}", daemon=True).start()
        return job

    def get(self, name: str) -> Job:
        """Job `name`, or a 404 naming the jobs there are."""
        job = self.jobs.get(name)
        if job is None:
            known = ", ".join(self.jobs) or "none yet"
            raise JobRefused(404, f"no training job named {name!r}; jobs of this server: {known}")
        return job

    def shutdown(self) -> None:
        """Interrupt every running job (each keeps its newest checkpoint) and wait for it, as the server stops."""
        running = [job for job in self.jobs.values() if job.status() == "running"]
        for job in running:
            job.cancelled = True
            job.process.send_signal(signal.SIGINT)
        for job in running:
            _escalate(job.process)

    def resumable(self) -> list[str]:
        """Runs under PIXIU_HOME/runs (from this page or a terminal) that stopped unfinished after a checkpoint
        and are not running now, newest first."""
        folders = sorted(runs_dir().iterdir(), reverse=True) if runs_dir().is_dir() else []
        running = {job.name for job in self.jobs.values() if job.status() == "running"}
        return [
            folder.name
            for folder in folders
            if folder.name not in running
            and read_run_file(folder).get("status", "finished") != "finished"
            and list_checkpoints(folder)
        ][:100]

    def _check_room(self) -> None:
        """Refuse a new job while `max_running` are running (the caller holds the lock)."""
        running = [job.name for job in self.jobs.values() if job.status() == "running"]
        if len(running) >= self.max_running:
            raise JobRefused(
                409, f"{', '.join(running)} is training; wait for it or cancel it (at most {self.max_running} at once)"
            )

    def _spawn(self, domain: str, run_dir: Path, max_steps: int, flags: list[str]) -> Job:
        """Start `pixiu domain train DOMAIN --output RUN_DIR FLAGS` with its output in the job's log file."""
        command = [sys.executable, "-m", "pixiu", "domain", "train", domain, f"--output={run_dir}", *flags]
        log_path = pixiu_home() / JOB_LOGS / f"{run_dir.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            log.write(f"$ pixiu {' '.join(command[3:])}\n".encode())
            log.flush()
            # its own session: a Ctrl-C meant for the server does not reach it; shutdown() interrupts it instead
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},  # the page shows output as it comes
                start_new_session=True,
            )
        job = Job(run_dir.name, domain, run_dir, log_path, command, max_steps, process)
        self.jobs[job.name] = job
        return job


def _escalate(process: subprocess.Popen) -> None:
    """Wait CANCEL_GRACE seconds for an interrupted process, then SIGTERM it, then SIGKILL it."""
    for then in (process.terminate, process.kill):
        try:
            process.wait(CANCEL_GRACE)
            return
        except subprocess.TimeoutExpired:
            then()
    process.wait()


def check_base(spec: str) -> None:
    """Refuse (400) a base that cannot load, as far as that shows without fetching anything: a missing local path,
    a file that is no .gguf, an unknown `scheme:`, a folder with no config or of a family pixiu does not train.
    A hub id, a .gguf file and a model source's reference are left to the run, whose log says what failed."""
    path = Path(spec).expanduser()
    try:
        if path.is_dir():
            base_config(str(path))
        elif path.is_file() and path.suffix != ".gguf":
            raise PixiuError(f"base {spec!r} is a file but not a .gguf; give the model folder or a .gguf file")
        elif not path.exists() and spec.startswith(("/", "./", "../", "~")):
            raise PixiuError(f"base {spec!r} does not exist on the server; give a folder there, a hub id or pypi:PKG")
        elif not path.exists() and ":" in spec and spec.partition(":")[0] not in get_model_sources():
            known = ", ".join(f"{name}:" for name in sorted(get_model_sources())) or "none"
            raise PixiuError(f"base {spec!r}: unknown model source; known schemes: {known}")
    except (PixiuError, OSError, ValueError) as exc:
        raise JobRefused(400, str(exc)) from exc


def run_folder(name: str) -> Path:
    """The run folder `name` directly under PIXIU_HOME/runs; a name with a path in it is refused."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise JobRefused(400, f"{name!r} is not a run name (a folder name under {runs_dir()})")
    return runs_dir() / name


def data_file(relative: str) -> Path:
    """The .jsonl/.json file `relative` (to PIXIU_HOME), which must lie inside PIXIU_HOME; else a 400."""
    home = pixiu_home().resolve()
    try:
        path = (home / relative).resolve()  # an absolute path replaces home; `..` and symlinks are resolved
    except (OSError, ValueError) as exc:
        raise JobRefused(400, f"data: {relative!r} is not a usable path ({exc})") from exc
    if not path.is_relative_to(home):
        raise JobRefused(400, f"data: must be a file inside PIXIU_HOME ({home}); upload it first")
    if not path.is_file() or path.suffix not in DATA_SUFFIXES:
        raise JobRefused(400, f"data: no .jsonl or .json file {relative!r} in PIXIU_HOME; see GET /v1/train/options")
    return path


def data_files() -> list[str]:
    """The .jsonl/.json files the page offers (under PIXIU_HOME's uploads, data and feedback), relative to it."""
    home = pixiu_home()
    found = []
    for folder in DATA_FOLDERS:
        found += [p for p in sorted((home / folder).rglob("*")) if p.suffix in DATA_SUFFIXES and p.is_file()]
    return [str(p.relative_to(home)) for p in found[:500]]


def upload_name(filename: str) -> str:
    """`filename` made safe to store: its last path part, characters other than letters, digits, `._-` replaced
    by `_`; a 400 unless it ends in .jsonl or .json."""
    name = re.sub(r"[^\w.-]", "_", filename.replace("\\", "/").rsplit("/", 1)[-1]).lstrip(".")
    if Path(name).suffix not in DATA_SUFFIXES or len(name) > 200:
        raise JobRefused(400, f"upload: {filename!r} must be a .jsonl or .json file name of at most 200 characters")
    return name


async def store_upload(filename: str, chunks: AsyncIterator[bytes], limit: int) -> Path:
    """Write an upload to PIXIU_HOME/uploads under its sanitised name (NAME-2... when taken), never more than
    `limit` bytes: a larger one is removed and refused with 413."""
    folder = pixiu_home() / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    name = upload_name(filename)
    path, number = folder / name, 1
    while True:
        try:
            handle = path.open("xb")  # never replaces a file a run may have recorded as its data
            break
        except FileExistsError:
            number += 1
            path = folder / f"{Path(name).stem}-{number}{Path(name).suffix}"
    size = 0
    with handle:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                break
            handle.write(chunk)
    if size > limit:
        path.unlink()
        raise JobRefused(413, f"upload: {filename!r} is larger than {limit} bytes; train on a smaller file")
    if size == 0:
        path.unlink()
        raise JobRefused(400, f"upload: {filename!r} is empty")
    return path
