"""Token ids to text as they arrive: only complete characters are released, and generation stops at stop strings."""

from __future__ import annotations


class TextStream:
    """Detokenise one answer incrementally and cut it at the first of `stop` (the stop string itself is dropped)."""

    def __init__(self, tokenizer, stop: list[str] | None = None):
        self.tokenizer = tokenizer
        self.stop = [s for s in stop or [] if s]
        self.text = ""
        self.stopped = False
        self._ids: list[int] = []
        self._prefix = 0  # ids[prefix:read] give the context that makes the next piece decode right
        self._read = 0
        self._sent = 0
        self._hold = max((len(s) for s in self.stop), default=1) - 1  # a stop string may still be forming

    def push(self, token_id: int) -> str:
        """Add one token and return the text that can now be sent (possibly empty)."""
        if self.stopped:
            return ""
        self._ids.append(token_id)
        self._advance(final=False)
        return self._release(len(self.text) if self.stopped else len(self.text) - self._hold)

    def finish(self) -> str:
        """Return the rest of the text, an incomplete last character included (as U+FFFD); call once, at the end."""
        if not self.stopped:
            self._advance(final=True)
        return self._release(len(self.text))

    def _advance(self, *, final: bool) -> None:
        """Append newly decodable text and cut it at a stop string; `final` also takes incomplete characters."""
        before = self._decode(self._prefix, self._read)
        after = self._decode(self._prefix, len(self._ids))
        if len(after) <= len(before) or (after.endswith("\ufffd") and not final):
            return  # nothing new, or an incomplete UTF-8 sequence: wait for more
        start = max(len(self.text) - self._hold, 0)  # a stop string may begin in text already seen
        self.text += after[len(before) :]
        self._prefix, self._read = self._read, len(self._ids)
        for stop in self.stop:
            found = self.text.find(stop, start)
            if found != -1:
                self.text, self.stopped = self.text[:found], True

    def _release(self, end: int) -> str:
        """Text from the last released position up to `end`."""
        if end <= self._sent:
            return ""
        piece, self._sent = self.text[self._sent : end], end
        return piece

    def _decode(self, start: int, end: int) -> str:
        """Decode ids[start:end] without special tokens."""
        return self.tokenizer.decode(self._ids[start:end], skip_special_tokens=True)
