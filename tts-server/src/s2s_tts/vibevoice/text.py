"""Streaming text -> Qwen2.5 tokens, equal to tokenizing the whole text at once as upstream does
(`text.strip() + "\\n"`, no special tokens) however the text is split into deltas.

The Qwen2 pre-tokenizer starts a new piece at every space that precedes a letter (` word`), and no piece spans it,
so the text before the last such space can be tokenized now and the rest (the last, possibly partial word) is held
back until more text or the end."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer


def load_tokenizer(model_dir: str | Path) -> Tokenizer:
    path = Path(model_dir) / "tokenizer" / "tokenizer.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (the Qwen2.5 tokenizer files belong in <model_dir>/tokenizer/)")
    return Tokenizer.from_file(str(path))


def _last_cut(text: str) -> int:
    """Index of the last space followed by a letter (0: none)."""
    for i in range(len(text) - 2, 0, -1):
        if text[i] == " " and text[i + 1].isalpha():
            return i
    return 0


class IncrementalText:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        self._held = ""
        self._started = False  # leading whitespace of the whole text is stripped, as upstream's strip() does
        self.chars = 0
        self.speakable = False  # any letter or digit seen

    def push(self, text: str) -> list[int]:
        """New text; returns the tokens that are now final."""
        self.chars += len(text)
        if not self.speakable and any(ch.isalnum() for ch in text):
            self.speakable = True
        held = self._held + text
        if not self._started:
            held = held.lstrip()
            if not held:
                self._held = ""
                return []
            self._started = True
        cut = _last_cut(held)
        if cut == 0:
            self._held = held
            return []
        self._held = held[cut:]
        return self._tok.encode(held[:cut], add_special_tokens=False).ids

    def finish(self) -> list[int]:
        """The end of the text: the held-back rest, right-stripped, with upstream's closing newline."""
        rest = self._held.rstrip()
        self._held = ""
        if not self._started and not rest:
            return []
        return self._tok.encode(rest + "\n", add_special_tokens=False).ids
