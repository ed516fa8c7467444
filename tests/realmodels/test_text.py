"""Default evaluation text and user text files."""

from __future__ import annotations

import pytest

from spatten_hls.compiler.errors import FrontendError
from spatten_hls.compiler.realmodels.text import default_sentences, default_text, read_text_file


def test_default_text_is_deterministic_prose():
    text = default_text()
    assert text == default_text()
    assert len(text) > 50_000  # enough for several thousand tokens
    assert ">>>" not in text and "::=" not in text  # no code samples, no grammar
    assert text.startswith("A Python program is constructed from code blocks.")


def test_default_sentences():
    sentences = default_sentences(32)
    assert sentences == default_sentences(32)
    assert len(set(sentences)) == 32
    assert all(6 <= len(s.split()) <= 40 and s[-1] in ".!?:)" for s in sentences)
    with pytest.raises(FrontendError, match="requested"):
        default_sentences(10**6)


def test_read_text_file(tmp_path):
    path = tmp_path / "eval.txt"
    path.write_text("Some text.\n", encoding="utf-8")
    assert read_text_file(path) == "Some text.\n"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such text file"),
        ("", "empty"),
        (" \n\t\n", "empty"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
    ],
)
def test_read_text_file_errors(tmp_path, content, message):
    path = tmp_path / "eval.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(FrontendError, match=message) as exc:
        read_text_file(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_read_text_file_directory(tmp_path):
    with pytest.raises(FrontendError, match="directory"):
        read_text_file(tmp_path)


def test_a_word_end_is_found_however_far_back_it_lies():
    from spatten_hls.compiler.realmodels.text import word_end_before

    source = "a b" + "x" * 10_000 + " y"
    assert word_end_before(source, 10_003) == 1  # past two search windows
    assert word_end_before(source, len(source)) == 10_003
    assert word_end_before("x" * 9000, 9000) is None
    assert word_end_before("a\u00a0b" * 3, 18) is None  # only ASCII space, tab, newline cut
    assert word_end_before("ab\tc", 5) == 2 and word_end_before("ab\tc", 2) is None


def test_a_sweep_names_its_key_for_too_many_default_sentences():
    from spatten_hls.compiler.realmodels.text import eval_sentences

    with pytest.raises(FrontendError, match=r"^'eval.sentences' = 1000: .* 1000 requested"):
        eval_sentences(None, 1000, "the default text", "'eval.sentences' =")
    with pytest.raises(FrontendError, match=r"^--sentences 1000: "):
        eval_sentences(None, 1000, "the default text")
