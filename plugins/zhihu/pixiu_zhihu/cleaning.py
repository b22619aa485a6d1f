"""Zhihu answer HTML -> plain text: paragraphs kept one per line, images, videos, scripts and styles dropped."""

from __future__ import annotations

import re

_DROPPED_TAGS = ("script", "style", "noscript", "img", "figure", "svg", "video", "iframe", "template")
"""Elements whose content is not answer text; `figure` takes its `figcaption` (an image caption) with it."""
_BLOCK_TAGS = (
    "p",
    "div",
    "br",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "tr",
    "hr",
    "section",
    "ul",
    "ol",
)
"""Elements that end a line of text."""
_SPACES = re.compile(r"[ \t\f\v\u00a0\u3000\u200b\u200c\u200d\ufeff]+")
"""Runs of horizontal whitespace, non-breaking and ideographic spaces, and zero-width characters."""


def html_to_text(html: str) -> str:
    """Turn an answer's HTML into plain text with one paragraph per line.

    Args:
        html: An HTML fragment such as Zhihu's answer `content` (`<p>…</p><figure>…</figure>`). Plain text
            without tags comes back with its whitespace normalised.

    Returns:
        The text, paragraphs joined by "\\n", inner whitespace collapsed; "" when nothing textual is left.
    """
    if not html or not html.strip():
        return ""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except etree.ParserError:  # only whitespace or comments
        return ""
    etree.strip_elements(root, etree.Comment, *_DROPPED_TAGS, with_tail=False)
    for element in root.iter(*_BLOCK_TAGS):
        element.tail = "\n" + (element.tail or "")
        if element.tag != "br":
            element.text = "\n" + (element.text or "")
    return normalize_text(root.text_content())


def normalize_text(text: str) -> str:
    """Collapse spaces inside each line and drop blank lines; keep one paragraph per line."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)
