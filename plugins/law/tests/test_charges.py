"""Charge-name normalisation and the list of known charges."""

from __future__ import annotations

import pytest

from pixiu_law.charges import KNOWN_CHARGES, normalize_charge

from ._data import SHARED_LAW


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("盗窃", "盗窃"),
        ("盗窃罪", "盗窃"),
        (" 故意伤害 ", "故意伤害"),
        ("[窝藏、包庇]", "窝藏、包庇"),
        ("[走私、贩卖、运输、制造]毒品", "走私、贩卖、运输、制造毒品"),
        ("[生产、销售][有毒、有害]食品", "生产、销售有毒、有害食品"),
        ("非法[持有、私藏][枪支、弹药]罪", "非法持有、私藏枪支、弹药"),
        ("【窝藏、包庇】", "窝藏、包庇"),
        ("［窝藏、包庇］", "窝藏、包庇"),
        ("窝藏，包庇", "窝藏、包庇"),
        ("窝藏, 包庇", "窝藏、包庇"),
        ("组织他人偷越国（边）境罪", "组织他人偷越国(边)境"),
        ("", ""),
        ("罪", ""),
    ],
)
def test_normalize_charge(written: str, canonical: str) -> None:
    assert normalize_charge(written) == canonical


def test_known_charges_are_canonical_and_keep_enumerations_whole() -> None:
    assert all(normalize_charge(name) == name and name for name in KNOWN_CHARGES)
    for name in ("走私、贩卖、运输、制造毒品", "掩饰、隐瞒犯罪所得、犯罪所得收益", "窝藏、包庇", "盗窃", "危险驾驶"):
        assert name in KNOWN_CHARGES
    assert "走私" in KNOWN_CHARGES and "贩卖" not in KNOWN_CHARGES


def test_known_charges_cover_cail2018() -> None:
    path = SHARED_LAW / "cail2018_accu.txt"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    cail = {normalize_charge(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}
    missing = sorted(cail - KNOWN_CHARGES)
    print(f"known charges cover {len(cail) - len(missing)} of {len(cail)} CAIL2018 charges; missing: {missing}")
    # 经济犯 is a CAIL2018 label but no charge of the Criminal Law.
    assert missing == ["经济犯"]
