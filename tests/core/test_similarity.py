"""ROUGE-L on CJK characters and Latin words."""

import pytest

from pixiu.similarity import rouge_l, text_units


def test_units_split_chinese_by_character_and_keep_words_whole():
    assert text_units("用GPT模型写3首诗, Hello!") == ["用", "gpt", "模", "型", "写", "3", "首", "诗", "hello"]


def test_rouge_l_is_the_lcs_f_measure():
    # LCS of 写一首诗 and 写两首诗 is 写首诗: 3 of 4 units on each side
    assert rouge_l("写一首诗", "写两首诗") == pytest.approx(0.75, abs=1e-6)
    assert rouge_l("Write a poem", "write a POEM") == pytest.approx(1.0, abs=1e-6)


def test_rouge_l_is_zero_without_units():
    assert rouge_l("", "写诗") == 0.0
    assert rouge_l("!!!", "写诗") == 0.0
    assert rouge_l("写诗", "画画") == 0.0
