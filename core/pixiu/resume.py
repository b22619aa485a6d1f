"""Resuming a run: its `pixiu_run.yaml` is the config, and options that contradict it are refused by name.

A resumed run must end exactly where the recorded one would have, so the base, data and every config value
come from the run folder; flags given again may only repeat what was recorded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pixiu.config import RunConfig, load_config, to_dict
from pixiu.domain import Domain
from pixiu.errors import PixiuError
from pixiu.runs import RUN_FILE, read_run_file


def resumable_record(run_dir: Path) -> dict[str, Any]:
    """The record a run folder keeps of itself, or an error saying the folder is no resumable run."""
    if not (Path(run_dir) / RUN_FILE).is_file():
        raise PixiuError(
            f"cannot resume {run_dir}: it has no {RUN_FILE}, so it is not a pixiu run folder. "
            "Pass the --output folder of the run to continue."
        )
    record = read_run_file(run_dir)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise PixiuError(
            f"cannot resume {run_dir}: {Path(run_dir) / RUN_FILE} holds no run config; "
            "start a new run with a new --output"
        )
    return record


def resumed_config(
    run_dir: Path,
    domain: Domain,
    *,
    yaml_paths: Sequence[Path] = (),
    overrides: Sequence[str] = (),
    values: Mapping[str, Any] | None = None,
    data_path: Path | None = None,
) -> tuple[RunConfig, Path]:
    """The recorded run's config and data file, with the user's explicit options laid over to check them.

    Raises:
        PixiuError: When the run is another domain's, its data file is gone, or an explicit option differs
            from the recorded value (each difference named).
    """
    record = resumable_record(run_dir)
    if record.get("domain") != domain.name:
        raise PixiuError(
            f"cannot resume {run_dir}: it is a run of domain {record.get('domain')!r}, not {domain.name!r}"
        )
    config = load_config(yaml_paths, overrides, values=values, domain=domain, start=record["config"])
    recorded_data = Path(record["data"])
    refuse_differences(run_dir, _differences_from_record(record, config, data_path))
    if not recorded_data.is_file():
        raise PixiuError(
            f"cannot resume {run_dir}: its data file {recorded_data} is gone; put it back there "
            "(a resumed run must see the same records), or start a new run"
        )
    return config, recorded_data


def check_matches_record(run_dir: Path, config: RunConfig, data_path: Path) -> None:
    """Refuse to resume `run_dir` with a config or data file other than the ones it recorded."""
    refuse_differences(run_dir, _differences_from_record(resumable_record(run_dir), config, data_path))


CHANGEABLE_ON_RESUME = (
    "train.devices",
    "train.strategy",
    "train.device",
    "train.precision",
    "train.gradient_checkpointing",
    "train.recompute_every",
    "train.max_minutes",
    "train.report_to",
)
"""Keys a resumed run may change: checkpoints are device-independent (AdamW's state is kept whole whichever
strategy wrote it, DeepSpeed aside: `pixiu.optimizer_state`), the step fixes the data position (only its split
over the devices changes), a time budget says only where this session stops, and a tracker only watches."""


def _differences_from_record(record: Mapping[str, Any], config: RunConfig, data_path: Path | None) -> list[str]:
    """Each config value (but those that may change on resume), and the data file when given, that differs."""
    problems = [
        p for p in differences(record["config"], to_dict(config)) if p.partition(":")[0] not in CHANGEABLE_ON_RESUME
    ]
    if data_path is not None and Path(data_path).resolve() != Path(record["data"]):
        problems.append(f"data: recorded {record['data']}, given {Path(data_path).resolve()}")
    return problems


def refuse_differences(run_dir: Path, problems: list[str]) -> None:
    """Raise an error listing `problems` (values that differ from the recorded run), if there are any."""
    if problems:
        listed = "\n".join(f"  - {p}" for p in problems)
        raise PixiuError(
            f"cannot resume {run_dir}: these options differ from the run it recorded in {RUN_FILE}:\n{listed}\n"
            "Drop them to continue the run as recorded, or start a new run with another --output."
        )


def differences(recorded: Mapping[str, Any], given: Mapping[str, Any], prefix: str = "") -> list[str]:
    """`key: recorded X, given Y` for every dotted key whose value differs between two config trees."""
    found = []
    for key in sorted(set(recorded) | set(given), key=str):
        dotted = f"{prefix}.{key}" if prefix else str(key)
        old, new = recorded.get(key), given.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += differences(old, new, dotted)
        elif old != new:
            found.append(f"{dotted}: recorded {old!r}, given {new!r}")
    return found
