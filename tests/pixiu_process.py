"""pixiu as a user runs it: the command line in a subprocess, `pixiu serve` on a free loopback port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import httpx

from pixiu.serve.server import free_port

PIXIU = [sys.executable, "-m", "pixiu"]
"""The `pixiu` command line of the interpreter running the tests."""

TINY_TRAIN = [
    "--max-steps",
    "2",
    "--set",
    "data.eval_records=4",
    "--set",
    "eval.max_new_tokens=4",
    "--set",
    "train.batch_tokens=512",
    "--set",
    "data.max_seq_len=128",
]
"""`pixiu domain train` options for a seconds-long run on a tiny model."""


@contextmanager
def pixiu_server(serve_args: Sequence[str], timeout: float = 90) -> Iterator[tuple[str, dict]]:
    """Start `pixiu serve SERVE_ARGS`, wait for /health, yield (base URL, health body); stop it afterwards."""
    port = free_port()
    command = [*PIXIU, "serve", *serve_args, "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, deadline = f"http://127.0.0.1:{port}", time.monotonic() + timeout
    try:
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=1).json()
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    raise AssertionError(f"pixiu serve did not come up:\n{server.communicate()[0]}") from None
                time.sleep(0.2)
        yield url, health
    finally:
        server.terminate()
        server.wait(timeout=30)
