"""A tiny randomly initialised chat model of any family in `ARCHES`, with a real byte-level tokenizer.

It speaks nonsense, but it has everything a real base has: the family's eos token and chat template (or none,
as gpt2-era and Llama-2/Mistral base checkpoints ship none), a pad token, a tokenizer that round-trips any text
(Chinese included), and the same file layout as a Hugging Face folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, GenerationConfig, PreTrainedTokenizerFast

from pixiu.families import GEMMA_TEMPLATE

_LLAMA_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 2048,
}
_GEMMA_SHAPE = {**_LLAMA_SHAPE, "head_dim": 16}
_WINDOW = {"sliding_window": 4}  # a tiny window, so that even short test prompts reach past it
_T5_SHAPE = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4}
"""Encoder-decoder: 2 encoder and 2 decoder blocks; mt5 adds the gated feed-forward (wi_0, wi_1)."""
_MOE = {"num_experts_per_tok": 2, "sliding_window": None}

ARCHES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", _LLAMA_SHAPE),
    "qwen2": ("Qwen2Config", _LLAMA_SHAPE),
    "mistral": ("MistralConfig", {**_LLAMA_SHAPE, **_WINDOW}),
    "gemma": ("GemmaConfig", _GEMMA_SHAPE),
    "gemma2": ("Gemma2Config", {**_GEMMA_SHAPE, **_WINDOW}),
    "gemma3_text": ("Gemma3TextConfig", {**_GEMMA_SHAPE, **_WINDOW}),
    "qwen2_moe": (
        "Qwen2MoeConfig",
        {**_LLAMA_SHAPE, **_MOE, "num_experts": 4, "moe_intermediate_size": 32, "shared_expert_intermediate_size": 64},
    ),
    "mixtral": ("MixtralConfig", {**_LLAMA_SHAPE, **_MOE, "num_local_experts": 4}),
    "gpt2": ("GPT2Config", {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 2048}),
    "bloom": ("BloomConfig", {"hidden_size": 64, "n_layer": 2, "n_head": 4}),
    "gpt_neox": (
        "GPTNeoXConfig",
        {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4},
    ),
    "opt": (
        "OPTConfig",
        {
            "hidden_size": 64,
            "ffn_dim": 128,
            "word_embed_proj_dim": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 2048,
        },
    ),
    "glm": ("GlmConfig", _GEMMA_SHAPE),
    "glm4": ("Glm4Config", _GEMMA_SHAPE),
    # rescale_every=1, as a real RWKV checkpoint's 6 scaled to two layers: transformers halves the second block's
    # output weights at inference, the case `pixiu.recurrent.run_unscaled` exists for
    "rwkv": (
        "RwkvConfig",
        {
            "hidden_size": 64,
            "attention_hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "context_length": 2048,
            "rescale_every": 1,
        },
    ),
    "t5": ("T5Config", _T5_SHAPE),
    "mt5": ("MT5Config", {**_T5_SHAPE, "feed_forward_proj": "gated-gelu"}),
}
"""Architectures `create_tiny_model` can build, by `model_type`: transformers' config class and its tiny shape."""

PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END]  # ids 0, 1, 2, as in SmolLM2 and Qwen-style vocabularies
VOCAB_SIZE = 1536

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML, as used by Qwen2 and SmolLM2: system/user/assistant turns between `<|im_start|>` and `<|im_end|>`."""

_END_OF_TEXT, _EOS, _START_OF_TURN, _END_OF_TURN = "<|endoftext|>", "</s>", "<start_of_turn>", "<end_of_turn>"
TOKENS: dict[str, tuple[str, list[str], str | None]] = {
    **dict.fromkeys(("llama", "qwen2", "qwen2_moe", "glm4"), (IM_END, [IM_START], CHAT_TEMPLATE)),
    **dict.fromkeys(("mistral", "mixtral"), (_EOS, [_EOS], None)),
    **dict.fromkeys(("gemma", "gemma2", "gemma3_text"), (_END_OF_TURN, [_START_OF_TURN, _END_OF_TURN], GEMMA_TEMPLATE)),
    **dict.fromkeys(("gpt2", "bloom", "gpt_neox", "opt", "glm", "rwkv"), (_END_OF_TEXT, [], None)),
    **dict.fromkeys(("t5", "mt5"), (_EOS, [_EOS, "<pad>"], None)),
}
"""Per architecture: the eos token, the special tokens added to the trained vocabulary, and the chat template the
tokenizer ships (None: none, like those bases, so pixiu's per-family fallback in `pixiu.families` is used)."""
PAD_TOKENS = dict.fromkeys(("t5", "mt5"), "<pad>")
"""The pad token where a family's is not `PAD`: T5's `<pad>`, which also starts its decoder (not an end of turn)."""

# A mix of the registers pixiu's domains see, so the learned merges cover common Chinese and English pieces.
CORPUS = """\
被告人张某于二〇二一年三月在某市某区盗窃他人财物，价值人民币五千元，其行为已构成盗窃罪。
公诉机关指控被告人李某犯故意伤害罪，致被害人轻伤二级，依法应当追究其刑事责任。
本院认为，被告人王某以非法占有为目的，采用虚构事实的方法骗取他人财物，数额较大，构成诈骗罪。
被告人刘某醉酒驾驶机动车在道路上行驶，血液中乙醇含量为每百毫升一百五十毫克，构成危险驾驶罪。
被告人自愿认罪认罚，有坦白情节，依法可以从轻处罚，判处有期徒刑一年，缓刑二年，并处罚金。
原告与被告签订房屋租赁合同，约定租期三年，被告逾期未支付租金，原告请求解除合同并赔偿损失。
根据《中华人民共和国刑法》第二百六十四条的规定，盗窃公私财物，数额较大的，处三年以下有期徒刑。
被告人赵某非法持有毒品甲基苯丙胺五十克，其行为已构成非法持有毒品罪，应予惩处。
劳动者与用人单位发生劳动争议，可以向劳动争议仲裁委员会申请仲裁，对裁决不服的可以向人民法院起诉。
被告人孙某挪用公款归个人使用，进行营利活动，数额较大，其行为已构成挪用公款罪。
患者男，四十五岁，反复咳嗽咳痰两周，伴低热乏力，胸部CT提示右下肺炎症，诊断为社区获得性肺炎。
高血压患者应当低盐饮食，规律服用降压药物，每日监测血压，避免情绪激动和过度劳累。
糖尿病的典型症状包括多饮、多食、多尿和体重下降，空腹血糖大于等于七毫摩尔每升可以诊断。
中医认为脾胃虚弱者宜食山药、薏米、红枣，忌食生冷油腻，可用四君子汤加减调理。
感冒发热时应多喝温水，注意休息，体温超过三十八点五摄氏度可以服用退烧药，症状加重请及时就医。
针灸治疗失眠常取神门、三阴交、百会等穴位，配合情志调节，疗效较好。
儿童腹泻应注意补充水分和电解质，口服补液盐可以预防脱水，必要时到医院就诊。
医生建议患者戒烟限酒，适量运动，保持健康体重，定期复查血脂和肝功能。
阿莫西林是一种常用的青霉素类抗生素，青霉素过敏者禁用，用药前应做皮试。
头痛伴恶心呕吐、视物模糊时，应警惕颅内压增高，需要尽快进行头颅影像学检查。
今天天气很好，我们一起去公园散步，顺便买点水果和蔬菜回家做晚饭。
请问从这里到火车站怎么走？坐地铁二号线到人民广场换乘一号线就到了。
周末我打算在家看书、写作业，晚上和朋友一起吃火锅，聊聊最近的工作和生活。
这家餐厅的饺子味道不错，价格也实惠，就是排队的人太多了，要等半个小时。
学习一门新语言需要坚持每天练习听说读写，不要害怕犯错，多和别人交流。
他每天早上七点起床，跑步三十分钟，然后吃早饭，八点半准时到公司上班。
如何才能提高工作效率？先列出今天要做的事情，按照轻重缓急排好顺序，一件一件完成。
知乎上有人问：为什么年轻人越来越喜欢独自旅行？回答说，因为自由，也因为想认识自己。
手机没电了，能借我用一下充电器吗？谢谢你，真是帮了我的大忙。
春节期间高速公路免费通行，出行前请关注路况信息，合理安排时间，注意行车安全。
问：什么是正当防卫？答：为了使国家、公共利益、本人或者他人的人身、财产免受正在进行的不法侵害而采取的制止行为。
问：失眠应该怎么办？答：保持规律作息，睡前避免使用手机，必要时在医生指导下用药。
问：合同无效的情形有哪些？答：违反法律、行政法规的强制性规定或者违背公序良俗的民事法律行为无效。
The defendant was found guilty of theft and sentenced to one year in prison with a fine.
The court held that the contract was void because it violated mandatory provisions of the law.
The patient presented with fever, cough and fatigue for two weeks; a chest scan showed pneumonia.
Patients with high blood pressure should reduce salt intake, exercise regularly and take their medicine.
Please summarise the following answer in one sentence, keeping the key facts and numbers.
You are a helpful assistant. Answer the question clearly and briefly, in the language of the question.
What is the capital of France? The capital of France is Paris, a city on the river Seine.
How do I make a cup of tea? Boil water, pour it over the tea leaves, wait three minutes and enjoy.
The quick brown fox jumps over the lazy dog while the cat sleeps in the warm afternoon sun.
Machine learning models learn patterns from data; fine-tuning adapts a general model to a specific domain.
LoRA adds small low-rank matrices to the attention and feed-forward layers and trains only those weights.
Numbers and symbols matter too: 2024-05-01, 3.14, 100%, $25, (a + b) * c = 42, user@example.com.
"""


def create_tiny_model(out_dir: Path, arch: str = "llama", seed: int = 0) -> Path:
    """Write a tiny random LM of architecture `arch` (causal; t5 and mt5: encoder-decoder) and its tokenizer to
    `out_dir`, and return `out_dir`.

    Args:
        out_dir: Folder to write (created if needed); it then loads with `from_pretrained`.
        arch: A `model_type` in `ARCHES` ("llama", "qwen2", "gpt2", "bloom", ...).
        seed: Seed of the weight initialisation; the same seed gives the same weights.

    Returns:
        `out_dir`, as a Path.
    """
    if arch not in ARCHES:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(ARCHES)}")
    out_dir = Path(out_dir)
    eos, extra, template = TOKENS[arch]
    tokenizer = train_tiny_tokenizer(eos=eos, extra_tokens=extra, chat_template=template)
    tokenizer.pad_token = PAD_TOKENS.get(arch, PAD)
    pad_id, eos_id = cast(list[int], tokenizer.convert_tokens_to_ids([tokenizer.pad_token, eos]))
    config_class, shape = ARCHES[arch]
    config = getattr(transformers, config_class)(
        vocab_size=len(tokenizer),
        **{"tie_word_embeddings": True, **shape},
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    start: dict[str, int] = {}
    if config.is_encoder_decoder:  # T5's decoder starts from the pad token
        config.decoder_start_token_id = start["decoder_start_token_id"] = pad_id
    auto_class = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
    with torch.random.fork_rng():  # leave the caller's random state alone
        torch.manual_seed(seed)
        model = auto_class.from_config(config, dtype=torch.float32)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, **start)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def train_tiny_tokenizer(
    eos: str = IM_END, extra_tokens: list[str] | None = None, chat_template: str | None = CHAT_TEMPLATE
) -> PreTrainedTokenizerFast:
    """Train the tiny byte-level BPE tokenizer on `CORPUS`; deterministic and lossless for any UTF-8 text.

    Args:
        eos: The end-of-sequence token (it must be special: trained or in `extra_tokens`).
        extra_tokens: Special tokens added after the trained vocabulary (a family's turn markers); None: `IM_START`.
        chat_template: The template the tokenizer ships; None for none.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(CORPUS.splitlines(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=eos,
        pad_token=PAD,
        extra_special_tokens=[IM_START] if extra_tokens is None else extra_tokens,
        chat_template=chat_template,
        model_max_length=2048,
    )
