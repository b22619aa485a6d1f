"""The adapter table: LRU eviction under `max_adapters`, slots reused, hooks detached on close."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from pixiu.errors import PixiuError
from pixiu.serve.adapters import UnknownModel
from pixiu.serve.request import SamplingParams

from .helpers import PROMPTS, call, chat_ids, eventually
from .test_engine import Collector


def test_lru_eviction_prefers_idle_adapters(make_engine, adapter_dirs, tokenizer, reference):
    engine = make_engine(max_adapters=3)  # not started yet: a submitted request waits, holding its adapter
    ids = chat_ids(tokenizer, PROMPTS[0])
    waiting = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=8), waiting)  # law: used least lately, but busy
    for name in ("zhihu", "medical"):
        engine.cancel(engine.submit(name, ids, SamplingParams(max_tokens=2), Collector()))  # used, now idle
    capacity = engine.adapters.lora.capacity
    engine.load_adapter("extra", adapter_dirs["law"])
    assert list(engine.adapters.loaded()) == ["law", "medical", "extra"]  # zhihu: the idle one used least lately
    assert engine.adapters.lora.capacity == capacity  # its slot was reused
    with pytest.raises(UnknownModel, match=r"'zhihu' was evicted.*max_adapters=3.*load it again"):
        engine.submit("zhihu", ids, SamplingParams(max_tokens=2), Collector())
    engine.start()
    assert waiting.wait().tokens == reference("law", ids, 8)[0]


def test_an_evicted_adapters_requests_still_finish_on_it(make_engine, make_app, adapter_dirs, tokenizer, reference):
    engine = make_engine(max_adapters=1)  # loading law, medical, zhihu kept only zhihu
    assert list(engine.adapters.loaded()) == ["zhihu"]
    ids = chat_ids(tokenizer, PROMPTS[1])
    evicted = Collector()
    engine.submit("zhihu", ids, SamplingParams(max_tokens=20), evicted)
    engine.load_adapter("law", adapter_dirs["law"], domain="law")  # the only candidate, zhihu, is busy: evicted
    assert list(engine.adapters.loaded()) == ["law"] and engine.adapters.retiring
    law = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=5), law)
    engine.start()
    assert evicted.wait().tokens == reference("zhihu", ids, 20)[0]
    assert law.wait().tokens == reference("law", ids, 5)[0]
    missing = call(
        make_app(engine),
        "POST",
        "/v1/chat/completions",
        json={"model": "zhihu", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert missing.status_code == 404 and "evicted" in missing.json()["error"]["message"]
    engine.load_adapter("zhihu", adapter_dirs["zhihu"])  # loading it again serves it again (law goes)
    assert list(engine.adapters.loaded()) == ["zhihu"]
    eventually(lambda: not engine.adapters.retiring)
    assert len(engine.adapters.lora._free) == engine.adapters.lora.capacity - 1


def test_slots_are_reused_across_load_unload_and_replace_cycles(make_engine, adapter_dirs, tokenizer, reference):
    engine = make_engine().start()

    def cycle(i: int) -> None:
        engine.load_adapter("extra", adapter_dirs["medical" if i % 2 else "law"])
        engine.load_adapter("law", adapter_dirs["law"])  # the new version takes a slot, the old one is retired
        engine.unload_adapter("extra").result(timeout=10)
        eventually(lambda: not engine.adapters.retiring)

    cycle(0)  # the stacks may grow once, to the peak of one cycle (four adapters plus a replacement)
    capacity, free = engine.adapters.lora.capacity, len(engine.adapters.lora._free)
    assert free == capacity - 3
    for i in range(1, 12):
        cycle(i)
    lora = engine.adapters.lora  # never more slots than one cycle's peak; fewer once the upper ones are unused
    assert lora.capacity <= capacity and len(lora._free) == lora.capacity - (capacity - free)
    ids = chat_ids(tokenizer, PROMPTS[2])
    sink = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=6), sink)
    assert sink.wait().tokens == reference("law", ids, 6)[0]


def test_many_names_under_a_cap_keep_the_slot_count(make_engine, adapter_dirs):
    engine = make_engine(max_adapters=3)
    capacity = engine.adapters.lora.capacity
    for i in range(20):
        engine.load_adapter(f"a{i}", adapter_dirs["zhihu"])
    assert list(engine.adapters.loaded()) == ["a17", "a18", "a19"] and engine.adapters.lora.capacity == capacity


def test_close_detaches_every_hook(make_engine, tiny_model_dir, tokenizer):
    engine = make_engine().start()
    sink = Collector()
    engine.submit("law", chat_ids(tokenizer, PROMPTS[3]), SamplingParams(max_tokens=3), sink)
    sink.wait()
    hooked = [m for m in engine.model.modules() if m._forward_hooks]
    assert hooked  # the adapters' hooks were there
    engine.close()
    assert not engine.running and not [m for m in engine.model.modules() if m._forward_hooks]
    assert engine.adapters.loaded() == {}
    input_ids = torch.randint(3, 1000, (2, 7), generator=torch.Generator().manual_seed(3))
    fresh = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with torch.inference_mode():
        assert torch.equal(engine.model(input_ids=input_ids).logits, fresh(input_ids=input_ids).logits)


def test_max_adapters_must_be_positive(make_engine):
    with pytest.raises(PixiuError, match="at least 1"):
        make_engine(max_adapters=0)


def test_slot_memory_shrinks_after_unloads(engine, adapter_dirs, tokenizer, reference):
    ids = chat_ids(tokenizer, PROMPTS[0])
    before = engine.stats()["adapter_bytes"]
    for i in range(10):  # 13 loaded: the stacks grow to 16 slots
        engine.load_adapter(f"x{i}", adapter_dirs["zhihu"])
    grown = engine.stats()["adapter_bytes"]
    assert grown > before and len(engine.adapters.loaded()) == 13
    for i in range(10):
        engine.unload_adapter(f"x{i}").result(timeout=30)
    assert engine.stats()["adapter_bytes"] <= before < grown  # back to what 3 adapters need
    sink = Collector()
    engine.submit("law", ids, SamplingParams(max_tokens=8), sink)
    assert sink.wait().tokens == reference("law", ids, 8)[0]  # the adapters left still compute the same
