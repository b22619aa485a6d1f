"""How a pixiu process asks the C library for host memory, tuned so that training's peak RSS is what it really uses.

A training step frees and reallocates the same activation-sized blocks (megabytes to tens of megabytes each)
thousands of times, while the activations kept for the backward pass stay live between them. With glibc's
defaults those long-lived blocks land between freed ones, the heap cannot give the holes back or reuse them for
the next larger block, and it grows: `pixiu domain train law` with gradient checkpointing on (SmolLM2-135M, fp32,
8 x 512 tokens) peaked at about 4.8 GiB of RSS while its live tensors never passed 1.5 GiB. Asking glibc for
blocks that fit together, and to keep what it has, brought the same run to about 2 GiB at the same speed
(docs/hardware.md gives the measurements):

- torch's own switch `THP_MEM_ALLOC_ENABLE=1` makes its CPU allocator align blocks of 2 MiB and more to 2 MiB
  (and use transparent huge pages for them where the kernel allows), so freed blocks fit the next ones;
- glibc's `M_MMAP_THRESHOLD` is fixed at 32 MiB (the ceiling its adaptive threshold climbs to), so
  activation-sized blocks come from the heap and are reused, not mapped and faulted in again on every allocation;
- `M_TRIM_THRESHOLD` is raised to 2 GiB, so freed memory at the heap's top is kept for the next step instead of
  being handed back to the kernel and faulted in again.

Each setting is left alone where the user has set it (`THP_MEM_ALLOC_ENABLE`, `MALLOC_MMAP_THRESHOLD_`,
`MALLOC_TRIM_THRESHOLD_`), and the glibc part applies on glibc only (not macOS, Windows or musl).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1
"""glibc's `mallopt` parameter number for the trim threshold (malloc.h)."""
M_MMAP_THRESHOLD = -3
"""glibc's `mallopt` parameter number for the mmap threshold (malloc.h)."""
MMAP_THRESHOLD_BYTES = 32 * 2**20
"""glibc's own ceiling for its adaptive mmap threshold on 64-bit systems: blocks up to this size come from the heap."""
TRIM_THRESHOLD_BYTES = 2**31 - 1
"""The largest trim threshold `mallopt` (an `int`) takes: free heap top below this is kept for reuse."""


def tune_host_allocator() -> None:
    """Apply the settings above to this process.

    Call it before anything imports torch: torch reads `THP_MEM_ALLOC_ENABLE` once, at its first allocation.
    """
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    libc = _glibc()
    if libc is not None:
        if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
            libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)


def _glibc() -> ctypes.CDLL | None:
    """The running process's glibc, or None on any other C library."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None
