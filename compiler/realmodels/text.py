"""Evaluation text: English prose from `pydoc_data.topics` (ships with CPython), or a user file.

`pydoc_data.topics.topics` maps topic keys to the plain-text rendering of the Python reference
manual (~750 kB, PSF licence). The default text is the prose paragraphs of a fixed list of
topics, in that order: headings, indented blocks (grammar, code, tables) and bullet lists
are dropped, and each paragraph's lines are joined with spaces. The wording differs slightly
between CPython versions, so numbers measured on it are comparable within one Python only.
"""

from __future__ import annotations

import pydoc_data.topics
import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.input_files import read_text

# Topic keys present in every CPython >= 3.11; chosen for running prose.
DEFAULT_TOPICS: tuple[str, ...] = (
    "execmodel",
    "naming",
    "exceptions",
    "import",
    "types",
    "objects",
    "customization",
    "specialnames",
    "numbers",
    "compound",
    "function",
    "class",
    "assignment",
    "typesseq",
    "typesmapping",
    "truth",
    "comparisons",
)

_HEADING = re.compile(r"^[*=\-~^\"]{3,}$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(*])")


def prose_paragraphs(raw: str) -> list[str]:
    """The running-text paragraphs of one pydoc topic, each joined into one line."""
    out = []
    for block in re.split(r"\n\s*\n", raw):
        lines = block.split("\n")
        if not lines or not lines[0].strip():
            continue
        if any(_HEADING.match(line.strip()) for line in lines):
            continue  # a heading underline
        if any(line[:1].isspace() for line in lines):
            continue  # grammar, code sample, table or the tail of a list
        if lines[0].lstrip().startswith(("* ", "- ", "Note:", "See also:")):
            continue
        para = " ".join(block.split())
        if len(para.split()) >= 8 and para.endswith((".", ":", ")")):
            out.append(para)
    return out


def default_text(topics: Sequence[str] = DEFAULT_TOPICS) -> str:
    """The default evaluation text: prose paragraphs of `topics`, separated by blank lines.

    Keys a given CPython lacks are skipped (their absence only shortens the text).
    """
    table = pydoc_data.topics.topics
    paragraphs = [p for key in topics if key in table for p in prose_paragraphs(table[key])]
    return "\n\n".join(paragraphs)


def split_sentences(text: str) -> list[str]:
    """Sentences of prose: split after . ! ? followed by whitespace and a capital or quote."""
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def default_sentences(
    count: int, *, min_words: int = 6, max_words: int = 40, topics: Sequence[str] = DEFAULT_TOPICS
) -> list[str]:
    """The first `count` sentences of the default text with min_words..max_words words.

    Sentences quoting code ("eval()") are kept: they are part of the prose. Duplicates are
    dropped; fewer than `count` sentences is an error.
    """
    if count < 1:
        raise ValueError("count must be positive")
    seen: set[str] = set()
    out: list[str] = []
    for sentence in split_sentences(default_text(topics)):
        if min_words <= len(sentence.split()) <= max_words and sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
            if len(out) == count:
                return out
    raise FrontendError(
        f"the default text holds only {len(out)} sentences of {min_words}.."
        f"{max_words} words, {count} requested"
    )


def read_text_file(path: str | Path) -> str:
    """A user's UTF-8 text file; FrontendError if it is missing, unreadable, too large or
    blank."""
    p = Path(path)
    text = read_text(p, "text file", FrontendError)
    if not text.strip():
        raise FrontendError(f"{p}: the text file is empty")
    return text


def eval_sentences(
    source: str | None, count: int, name: str, count_name: str = "--sentences"
) -> list[str]:
    """The sentences an encoder is evaluated on: the first `count` of a user's text `source`
    (`name` in messages) with at least two words, or of the default text (`count_name`, the
    flag or key `count` came from, in messages)."""
    if source is None:
        try:
            return default_sentences(count)
        except FrontendError as e:
            raise FrontendError(f"{count_name} {count}: {e}") from None
    sentences = [s for s in split_sentences(source) if len(s.split()) >= 2][:count]
    if len(sentences) < 2:
        raise FrontendError(f"{name}: fewer than 2 sentences")
    return sentences


# where whitespace follows a non-space character: a byte-level BPE pre-tokenizer never joins
# the two sides (no pre-token runs from a non-space character into whitespace), so a prefix
# cut there tokenizes as the whole text does up to the cut
_WORD_END = re.compile(r"\S(?=[ \t\n])")
PREFIX_CHARS = 4096  # the first prefix tokenized; at least 16 characters a token wanted
_SEARCH_WINDOW = 4096  # characters a backward search for a word end scans at a time


def leading_ids(encode: Callable[[str], np.ndarray], source: str, tokens: int) -> np.ndarray:
    """The first `tokens` ids of `encode(source)`, tokenizing only a prefix of `source` that
    holds them (doubled until it does), so a long prose text costs time and memory in
    proportion to the tokens wanted, not to its length (a text with no word end to cut at is
    tokenized whole)."""
    chars = max(PREFIX_CHARS, 16 * tokens)
    while chars < len(source):
        cut = word_end_before(source, chars)
        if cut:
            ids = encode(source[:cut])
            if len(ids) >= tokens:
                return ids[:tokens]
        chars *= 2
    return encode(source)[:tokens]


def word_end_before(source: str, chars: int) -> int | None:
    """The last cut before `chars` where an ASCII space, tab or newline follows a non-space
    character, or None. Searched backwards a window at a time; consecutive windows overlap by
    one character, because a match at a window's last character cannot see past it."""
    end = min(chars, len(source))
    while end > 1:
        start = max(0, end - _SEARCH_WINDOW)
        ends = [m.end() for m in _WORD_END.finditer(source, start, end)]
        if ends:
            return ends[-1]
        end = start + 1 if start else 0
    return None
