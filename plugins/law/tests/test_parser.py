"""Model text or gold answers -> charge sets."""

from __future__ import annotations

import pytest

from pixiu_law.parser import parse_charges


@pytest.mark.parametrize(
    ("text", "charges"),
    [
        ("罪名：盗窃", {"盗窃"}),
        ("罪名：盗窃；诈骗", {"盗窃", "诈骗"}),
        ("罪名:盗窃;诈骗", {"盗窃", "诈骗"}),
        ("罪名：走私、贩卖、运输、制造毒品；容留他人吸毒", {"走私、贩卖、运输、制造毒品", "容留他人吸毒"}),
        ("罪名：[窝藏、包庇]", {"窝藏、包庇"}),
        ("罪名：盗窃罪；诈骗罪", {"盗窃", "诈骗"}),
        ("罪名：盗窃罪、诈骗罪", {"盗窃", "诈骗"}),
        ("罪名：盗窃，诈骗", {"盗窃", "诈骗"}),
        ("罪名：经济犯", {"经济犯"}),  # a gold label outside the known list is kept as written
        ("罪名：组织参与国境外赌博活动", {"组织参与国境外赌博活动"}),  # not split into 赌博
        ("[罪名]盗窃;抢夺<eoa>", {"盗窃", "抢夺"}),
        ("罪名：", set()),
        ("罪名：盗窃\n理由：其行为不构成诈骗罪。", {"盗窃"}),
    ],
)
def test_canonical_segments(text: str, charges: set[str]) -> None:
    assert parse_charges(text) == charges


@pytest.mark.parametrize(
    ("text", "charges"),
    [
        ("被告人张三的行为构成信用卡诈骗罪。", {"信用卡诈骗"}),  # longest match: not also 诈骗
        ("张三犯盗窃罪、抢劫罪，应数罪并罚。", {"盗窃", "抢劫"}),
        ("应认定为走私、贩卖、运输、制造毒品罪", {"走私、贩卖、运输、制造毒品"}),
        ("构成掩饰、隐瞒犯罪所得、犯罪所得收益罪", {"掩饰、隐瞒犯罪所得、犯罪所得收益"}),
        ("他犯了职务侵占罪", {"职务侵占"}),
        ("", set()),
        ("我不知道。", set()),
        ("asdf 1234 ###", set()),
    ],
)
def test_free_text(text: str, charges: set[str]) -> None:
    assert parse_charges(text) == charges


def test_returns_frozenset() -> None:
    assert isinstance(parse_charges("罪名：盗窃"), frozenset)
