"""Serving fixtures: three random LoRA adapters on the tiny model, a running engine, the app, and peft references."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pixiu.testing.web import browser  # noqa: F401  (headless Chromium, a fixture for the page tests)

from .helpers import ADAPTERS, ADMIN_TOKEN, RM_MAX_LEN


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch single-threaded: the tiny model gains nothing from threads, and on a busy machine a
    descheduled OpenMP worker makes each tiny matmul wait milliseconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def adapter_dirs(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Random, non-zero LoRA adapters saved by peft, as a trained adapter would be."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("adapters")
    for seed, (name, (rank, targets)) in enumerate(ADAPTERS.items(), start=1):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=targets, init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(root / name)
    return {name: root / name for name in ADAPTERS}


@pytest.fixture(scope="session")
def rm_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A reward model folder as `--method rm` saves it: random non-zero LoRA, a non-zero head, pixiu_run.yaml."""
    import yaml
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from pixiu.reward_model import save_head
    from pixiu.runs import RUN_FILE

    folder = tmp_path_factory.mktemp("rm") / "zhihu-rm"
    torch.manual_seed(7)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    head = torch.nn.Linear(model.config.hidden_size, 1, dtype=torch.float32)
    with torch.no_grad():
        head.weight.normal_(generator=torch.Generator().manual_seed(3))
        head.bias.fill_(0.5)
    save_head(head, folder)
    record = {"base_model": str(tiny_model_dir), "domain": "zhihu", "config": {"data": {"max_seq_len": RM_MAX_LEN}}}
    (folder / RUN_FILE).write_text(yaml.safe_dump(record), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def reference(tiny_model_dir: Path, adapter_dirs: dict[str, Path]):
    """`solo(model, prompt_ids, max_tokens) -> (tokens, logits)`: one request alone, through peft's `set_adapter`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base

    tokenizer = load_base(str(tiny_model_dir))[1]
    peft_model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter_dirs["law"]), adapter_name="law"
    )
    for name in ADAPTERS:
        if name != "law":
            peft_model.load_adapter(str(adapter_dirs[name]), adapter_name=name)
    peft_model.eval()
    stops = stop_token_ids(tokenizer, peft_model)
    cache: dict = {}

    @torch.inference_mode()
    def solo(model: str, prompt_ids: list[int], max_tokens: int) -> tuple[list[int], torch.Tensor]:
        key = (model, tuple(prompt_ids), max_tokens)
        if key not in cache:
            input_ids = torch.tensor([prompt_ids])
            arguments = {
                "input_ids": input_ids,
                "attention_mask": torch.ones_like(input_ids),
                "do_sample": False,
                "max_new_tokens": max_tokens,
                "eos_token_id": stops,
                "pad_token_id": tokenizer.pad_token_id,
                "output_logits": True,
                "return_dict_in_generate": True,
            }
            if model == "base":
                with peft_model.disable_adapter():
                    output = peft_model.generate(**arguments)
            else:
                peft_model.set_adapter(model)
                output = peft_model.generate(**arguments)
            tokens = [t for t in output.sequences[0, len(prompt_ids) :].tolist() if t not in stops]
            cache[key] = (tokens, torch.stack([step[0] for step in output.logits]))
        return cache[key]

    return solo


@pytest.fixture
def tokenizer(tiny_model_dir: Path):
    """The tiny model's tokenizer."""
    from pixiu.models import load_base

    return load_base(str(tiny_model_dir))[1]


@pytest.fixture
def make_engine(tiny_model_dir: Path, adapter_dirs: dict[str, Path]):
    """`make_engine(**options)`: a fresh engine on the tiny model with every test adapter loaded, not started."""
    from pixiu.generate import stop_token_ids
    from pixiu.models import load_base
    from pixiu.serve.engine import Engine

    engines = []

    def make(**options):
        model, tokenizer = load_base(str(tiny_model_dir))
        engine = Engine(model, stop_token_ids(tokenizer, model), **{"max_batch": 8, "max_waiting": 64, **options})
        for name, folder in adapter_dirs.items():
            engine.load_adapter(name, folder, domain=name)  # each test adapter stands for its domain
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()


@pytest.fixture
def engine(make_engine):
    """A started engine serving the base and the three test adapters."""
    return make_engine().start()


@pytest.fixture
def make_app(tiny_model_dir: Path, tokenizer):
    """`make_app(engine, **limits)`: the HTTP app over `engine`, admin token `ADMIN_TOKEN`, small limits."""
    from pixiu.serve.app import build_app
    from pixiu.serve.state import Limits

    def make(engine, admin_token: str | None = ADMIN_TOKEN, **limits):
        limits = Limits(
            **{"context": 2048, "max_prompt_tokens": 256, "max_tokens": 64, "max_body_bytes": 64 * 1024, **limits}
        )
        return build_app(engine, tokenizer, base=str(tiny_model_dir), limits=limits, admin_token=admin_token)

    return make


@pytest.fixture
def app(make_app, engine):
    """The app over a started engine."""
    return make_app(engine)


@pytest.fixture(scope="session")
def tiny_family(tmp_path_factory: pytest.TempPathFactory):
    """`tiny_family(arch)`: the folder of a tiny model of that family (`pixiu.tiny`), made once per session."""
    from pixiu.tiny import create_tiny_model

    made: dict[str, Path] = {}

    def make(arch: str) -> Path:
        if arch not in made:
            made[arch] = create_tiny_model(tmp_path_factory.mktemp(arch), arch=arch)
        return made[arch]

    return make
