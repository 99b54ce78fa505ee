"""Streaming text -> tokens: however the text is split, the tokens equal upstream's tokenization of the whole
text (`text.strip() + "\\n"`), and a partial last word is held back."""

from __future__ import annotations

import random

import pytest
from tokenizers import Tokenizer

from s2s_tts.tiny_model import tiny_tokenizer
from s2s_tts.vibevoice.text import IncrementalText

TEXTS = [
    "Hello, how are you today? I am fine, thank you very much for asking.",
    "  It's a lovely day; we'll see what they've done.  Isn't it?   Yes!\nNew lines, too.  ",
    "The quick brown fox jumps over the lazy dog near the river bank",
    "Numbers 12 and 345 stay digits; symbols like $5 or 3.14 too. Ünïcödé wörds, naïve café.",
    "a  b   c    d\te\n\nf",
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return tiny_tokenizer()


def _stream(tok: Tokenizer, pieces: list[str]) -> list[int]:
    inc = IncrementalText(tok)
    out: list[int] = []
    for p in pieces:
        out += inc.push(p)
    return out + inc.finish()


@pytest.mark.parametrize("text", TEXTS)
def test_any_split_gives_the_whole_text_tokens(tok: Tokenizer, text: str) -> None:
    want = tok.encode(text.strip() + "\n", add_special_tokens=False).ids
    rng = random.Random(len(text))
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 12))))
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
        assert _stream(tok, pieces) == want, pieces
    assert _stream(tok, list(text)) == want  # one character at a time


def test_partial_word_is_held_back(tok: Tokenizer) -> None:
    inc = IncrementalText(tok)
    assert inc.push("Hel") == []
    assert inc.push("lo wor") == tok.encode("Hello", add_special_tokens=False).ids
    assert inc.push("ld") == []
    assert inc.finish() == tok.encode(" world\n", add_special_tokens=False).ids


def test_speakable_and_empty(tok: Tokenizer) -> None:
    inc = IncrementalText(tok)
    assert inc.push("   ") == [] and not inc.speakable
    assert inc.push("?! ...") == [] and not inc.speakable
    assert inc.finish() != []  # punctuation still tokenizes; the engine decides it is unspeakable
    empty = IncrementalText(tok)
    assert empty.finish() == [] and not empty.speakable
    assert IncrementalText(tok).push("ok 1") == []  # cut only before a space + letter
    assert IncrementalText(tok).push("ok then") == tok.encode("ok", add_special_tokens=False).ids
