"""Read relevant articles and a prison term from model text or a gold answer (Arabic or Chinese numerals).

Both readers take NFKC-normalised text (full-width colons and digits already plain). When the text has a
canonical line (`法条：…`, `刑期：…`), only that line is read; otherwise the whole text is searched, so
"依照《中华人民共和国刑法》第二百六十四条…判处有期徒刑一年六个月" gives article 264 and 18 months.
"""

from __future__ import annotations

import re

from pixiu_law.answer import DEATH_PENALTY, LIFE_IMPRISONMENT

_NUMBER = r"[0-9]+|[零〇一二两三四五六七八九十百千]+"
_DIGIT_CHARS = ("零〇", "一", "二两", "三", "四", "五", "六", "七", "八", "九")
_DIGITS = {char: value for value, chars in enumerate(_DIGIT_CHARS) for char in chars}
_UNITS = {"十": 10, "百": 100, "千": 1000}

_ARTICLES_LINE = re.compile(r"(?:法条|相关法条|法律条文)\s*:\s*([^\n]*)")
_ARTICLE = re.compile(rf"第\s*({_NUMBER})\s*条")
_ARTICLE_SUFFIX = re.compile(r"条之[一二三四五六七八九十]+")
"""第133条之一 is article 133 to CAIL2018; the suffix must not be read as a number of its own."""
_LAST_ARTICLE = 452
"""The PRC Criminal Law's last article: a larger number is not one of its articles."""

_TERM_LINE = re.compile(r"刑期\s*:\s*([^\n]*)")
_MONTHS = rf"(?:({_NUMBER})\s*年)?\s*(?:零\s*)?(?:({_NUMBER})\s*个?月)?"
_TERM_IN_LINE = re.compile(rf"死刑|无期徒刑|无期|{_MONTHS}")
_TERM_IN_TEXT = re.compile(rf"死刑|无期徒刑|(?:有期徒刑|拘役|管制)\s*{_MONTHS}")
"""Outside a `刑期：` line a number of years or months counts only after the penalty's name (dates do not)."""


def parse_articles(text: str) -> frozenset[int]:
    """The article numbers an NFKC-normalised text names: from its `法条：` line(s) if any, else anywhere.

    In a `法条：` line bare numbers count when it has no `第…条` (`法条：264；266`); elsewhere only `第…条`
    does. 第133条之一 gives 133, as CAIL2018 numbers it. Numbers beyond the Criminal Law's 452 articles are dropped.
    """
    lines = [_ARTICLE_SUFFIX.sub("条", line) for line in _ARTICLES_LINE.findall(text)]
    if lines:  # `第…条` where the line has it (法条：第264条第1款 is 264 alone), else its bare numbers
        numbers = [n for line in lines for n in _ARTICLE.findall(line) or re.findall(_NUMBER, line)]
    else:
        numbers = _ARTICLE.findall(_ARTICLE_SUFFIX.sub("条", text))
    articles = (chinese_int(n) for n in numbers)
    return frozenset(n for n in articles if n is not None and 1 <= n <= _LAST_ARTICLE)


def parse_term(text: str) -> int | None:
    """The prison term an NFKC-normalised text gives: months, `DEATH_PENALTY` or `LIFE_IMPRISONMENT`; None if none.

    The first term found wins (the main sentence, before any 缓刑 probation), read from the `刑期：` line
    if there is one, else after 有期徒刑/拘役/管制 anywhere. "1年6个月", "一年零六个月" and "18个月" are 18;
    a bare number in a `刑期：` line counts months, CAIL2018's unit.
    """
    lines = _TERM_LINE.findall(text)
    pattern, searched = (_TERM_IN_LINE, lines) if lines else (_TERM_IN_TEXT, [text])
    for part in searched:
        for match in pattern.finditer(part):
            word, years, months = match.group(0), match.group(1), match.group(2)
            if word.startswith("死刑"):
                return DEATH_PENALTY
            if word.startswith("无期"):
                return LIFE_IMPRISONMENT
            if years is None and months is None:
                continue
            return 12 * (chinese_int(years or "0") or 0) + (chinese_int(months or "0") or 0)
    bare = (chinese_int(number) for line in lines for number in re.findall(_NUMBER, line))
    return next((number for number in bare if number is not None), None)


def chinese_int(number: str) -> int | None:
    """An integer in Arabic digits or in Chinese numerals below 10,000 ("二百六十四", "十八", "两"); None if neither."""
    if number.isascii():
        return int(number) if number.isdigit() else None
    total, digit = 0, None
    for char in number:
        if char in _DIGITS:
            if digit is not None and _DIGITS[char] != 0:
                return None  # two digits in a row ("二六四") is not a numeral this reads
            digit = _DIGITS[char] or None
        elif char in _UNITS:
            total += (digit or 1) * _UNITS[char]
            digit = None
        else:
            return None
    return total + (digit or 0)
