"""Incremental detokenisation: whole characters only, and stop strings cut the answer even across tokens."""

from pixiu.serve.text import TextStream

TEXT = "被告人张某盗窃财物 worth $25，构成盗窃罪。The END"


def stream(tokenizer, ids, stop=None):
    text = TextStream(tokenizer, stop)
    pieces = [text.push(token) for token in ids]
    return [*pieces, text.finish()], text


def test_pieces_add_up_to_the_decoded_text(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces, _ = stream(tokenizer, ids)
    assert "".join(pieces) == TEXT
    assert all("\ufffd" not in piece for piece in pieces)
    assert len([p for p in pieces if p]) > 5  # it really streams


def test_stop_string_cuts_the_answer(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces, text = stream(tokenizer, ids, stop=["盗窃罪", "never"])
    assert "".join(pieces) == "被告人张某盗窃财物 worth $25，构成" and text.stopped
    pieces, text = stream(tokenizer, ids, stop=["absent"])
    assert "".join(pieces) == TEXT and not text.stopped


def test_first_of_several_stop_strings_wins(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    pieces, _ = stream(tokenizer, ids, stop=["END", "$25"])
    assert "".join(pieces) == "被告人张某盗窃财物 worth "


def test_an_answer_cut_inside_a_character_ends_like_decode(tokenizer):
    ids = tokenizer(TEXT, add_special_tokens=False)["input_ids"]
    cut = next(n for n in range(1, len(ids)) if tokenizer.decode(ids[:n]).endswith("\ufffd"))
    pieces, _ = stream(tokenizer, ids[:cut])
    assert "\ufffd" not in "".join(pieces[:-1])  # held back while the character might still complete
    assert "".join(pieces) == tokenizer.decode(ids[:cut])
