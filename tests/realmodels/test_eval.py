"""SpAtten on a real encoder: sentence-embedding fidelity and DRAM, through the simulator."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from spatten_hls.compiler.cli.main import main
from spatten_hls.compiler.config import config_from_dict

SENTENCES = [
    "The interpreter reads a program one statement at a time.",
    "A function call evaluates its arguments before the body runs.",
    "Exceptions propagate up the call stack until a handler catches them.",
    "Modules are loaded once and cached for later imports.",
    "A list can grow and shrink while the program runs.",
    "Dictionaries map keys to values with fast lookups.",
]


@pytest.fixture(scope="module")
def evaluate(minilm):
    from spatten_hls.compiler.realmodels.evaluate import evaluate_encoder

    return lambda cfg: evaluate_encoder(minilm, config_from_dict(cfg), SENTENCES)


def test_dense_12bit_datapath_is_faithful(evaluate):
    r = evaluate({})
    assert r.mean_cosine > 0.9999 and r.min_cosine > 0.9999
    assert r.nn_agreement == 1.0
    assert r.dram_bytes == r.dense_dram_bytes  # 12-bit Q, K (8+4), V: the baseline itself
    assert r.tokens_per_layer == [round(r.tokens / len(SENTENCES), 3)] * 6  # nothing pruned


def test_8bit_quantization_reads_half_the_beats_and_stays_close(evaluate):
    r = evaluate({"quantization": {"q_bits": 8, "k_msb_bits": 8, "k_lsb_bits": 0, "v_bits": 8}})
    # head_dim 32: a 12-bit row is 384 bits, two 256-bit beats; an 8-bit row is one
    assert r.dram_reduction == 2.0
    assert 0.999 < r.mean_cosine < 1.0  # measured 0.99985 on 16 pydoc sentences


def test_token_pruning_removes_tokens_and_costs_fidelity(evaluate):
    r = evaluate({"token_pruning": {"enabled": True, "keep": 0.5, "keep_first": 1}})
    counts = r.tokens_per_layer
    assert all(a >= b for a, b in itertools.pairwise(counts))
    assert counts[-1] < counts[0]
    assert r.dram_reduction > 1.2
    assert r.mean_cosine < 0.999  # without fine-tuning, pruning half the tokens shows


def test_evaluation_is_deterministic(evaluate):
    cfg = {"token_pruning": {"enabled": True, "keep": 0.6}, "head_pruning": {"enabled": True}}
    assert evaluate(cfg) == evaluate(cfg)


def test_eval_cli_json(capsys, minilm):
    assert main(["eval", "minilm-l6", "--sentences", "4", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("mean_cosine", "min_cosine", "nn_agreement", "dram_reduction"):
        assert key in doc
    assert doc["sentences"] == 4 and doc["dram_reduction"] == 1.0


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["minilm-l6", "--sentences", "1"], 2),
        (["minilm-l6", "--text-file", "/nonexistent/text.txt"], 1),
    ],
)
def test_eval_cli_errors(capsys, minilm, args, status):
    try:
        code = main(["eval", *args])
    except SystemExit as exc:  # usage errors exit through argparse
        code = exc.code
    assert code == status
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_eval_cli_empty_text_file(capsys, minilm, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert main(["eval", "minilm-l6", "--text-file", str(empty)]) == 1
    assert "empty" in capsys.readouterr().err


def test_nearest_neighbours_ties_to_lower_index():
    from spatten_hls.compiler.realmodels.evaluate import nearest_neighbours

    e = np.array([[1.0, 0.0], [0.6, 0.8], [0.6, 0.8], [0.0, 1.0]])
    # row 0: rows 1 and 2 tie (0.6) -> 1; rows 1 and 2 are each other's twin; row 3: 1 and 2
    # tie (0.8) -> 1
    assert list(nearest_neighbours(e)) == [1, 2, 1, 1]


@pytest.fixture(scope="module")
def decode(smollm2):
    from spatten_hls.compiler.realmodels import text
    from spatten_hls.compiler.realmodels.evaluate import evaluate_decoder

    ids = smollm2.encode(text.default_text())[:64]
    return lambda cfg: evaluate_decoder(smollm2, config_from_dict(cfg), ids, 16)


def test_decoder_12bit_datapath_tracks_dense(decode):
    r = decode({})
    assert abs(r.ppl_spatten / r.ppl_dense - 1) < 0.02
    assert r.top1_agreement >= 0.9
    assert r.decode_steps == 47 and r.requant_fraction == 0.0
    assert r.dram_reduction == 1.0  # 12-bit Q, K (8+4), V: the dense baseline itself


def test_decoder_kv_pruning_reads_less_and_is_deterministic(decode):
    cfg = {
        "token_pruning": {"enabled": True, "keep": 0.5, "keep_first": 4, "keep_recent": 8},
        "quantization": {"k_msb_bits": 8, "k_lsb_bits": 0, "v_bits": 8},
    }
    r = decode(cfg)
    assert r.dram_reduction > 1.8
    assert r.ppl_spatten != r.ppl_dense
    assert decode(cfg) == r


def test_eval_cli_decoder_json(capsys, smollm2):
    assert main(["eval", "smollm2-135m", "--tokens", "40", "--prompt", "16", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("ppl_dense", "ppl_spatten", "top1_agreement", "dram_reduction"):
        assert key in doc
    assert doc["decode_steps"] == 23


def test_eval_cli_decoder_bad_lengths(capsys, smollm2):
    assert main(["eval", "smollm2-135m", "--tokens", "10", "--prompt", "9"]) == 1
    assert capsys.readouterr().err.startswith("error: --tokens 10")


def test_eval_cli_bad_model_inputs(capsys, minilm, tmp_path):
    import shutil

    t5 = tmp_path / "t5"
    t5.mkdir()
    (t5 / "config.json").write_text('{"model_type": "t5", "num_layers": 6}')
    corrupt = tmp_path / "corrupt"
    shutil.copytree(minilm.source, corrupt)
    (corrupt / "model.safetensors").write_bytes(b"not a safetensors file")
    for model in (str(tmp_path / "missing"), str(t5), str(corrupt)):
        assert main(["eval", model, "--sentences", "2"]) == 1, model
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def one_error_line(capsys, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_eval_checks_a_config_against_the_model_as_compile_does(capsys, minilm, tmp_path):
    """A config that `compile` and `report` refuse for the model is refused by eval too, with
    the file and key named (also within --compare)."""
    too_long = tmp_path / "too_long.toml"
    too_long.write_text("[model]\nseq_len = 600\n")
    generation = tmp_path / "generation.toml"
    generation.write_text('[model]\nstage = "generation"\n')
    assert main(["eval", "minilm-l6", "--sentences", "4", "--config", str(too_long)]) == 1
    one_error_line(capsys, str(too_long), "'model.seq_len' = 600", "512")
    assert main(["eval", "minilm-l6", "--sentences", "4", "--compare", str(too_long)]) == 1
    one_error_line(capsys, str(too_long))
    fine = tmp_path / "fine.toml"
    fine.write_text("")
    argv = ["eval", "minilm-l6", "--sentences", "4", "--compare", str(fine), str(generation)]
    assert main(argv) == 1
    one_error_line(capsys, str(generation), "'model.stage'")


def test_eval_names_the_flag_a_too_large_count_comes_from(capsys, minilm, smollm2, tmp_path):
    assert main(["eval", "minilm-l6", "--sentences", "100000"]) == 1
    one_error_line(capsys, "--sentences 100000", "requested")
    assert main(["eval", "smollm2-135m", "--tokens", "8193", "--prompt", "8"]) == 1
    one_error_line(capsys, "--tokens 8193", "8192")
    short = tmp_path / "short.txt"
    short.write_text("Hello world.\n")
    argv = ["eval", "smollm2-135m", "--tokens", "40", "--prompt", "8", "--text-file", str(short)]
    assert main(argv) == 1
    one_error_line(capsys, str(short), "holds only")
    plot = tmp_path / "p.svg"
    assert main(["eval", "minilm-l6", "--sentences", "4", "--plot", str(plot)]) == 1
    one_error_line(capsys, "--plot", ".png")
    assert not plot.exists()


@pytest.mark.parametrize("tokens", [3, 40, 300, 2048])
def test_decoder_ids_tokenize_a_prefix_as_the_whole_text(smollm2, tokens):
    """A decoder's ids come from a prefix of the text cut where whitespace follows a word,
    which tokenizes as the whole text does up to the cut, including odd spacing and digits;
    prose is read to at most twice 16 characters a token (or twice the first 4096)."""
    from spatten_hls.compiler.realmodels import text

    source = text.default_text()
    odd = "  ".join(source.split(" ")).replace(". ", ".\n\n 12345 \t")
    for s in (source, odd):
        whole = smollm2.encode(s)[:tokens]
        calls: list[int] = []

        def encode(part: str, calls: list[int] = calls) -> np.ndarray:
            calls.append(len(part))
            return smollm2.encode(part)

        assert np.array_equal(text.leading_ids(encode, s, tokens), whole)
        assert max(calls) <= max(text.PREFIX_CHARS, 16 * tokens) * 2 < len(s)


def test_a_word_end_cut_tokenizes_as_the_whole_text(smollm2):
    """Cut where whitespace follows a word, the text's prefix tokenizes to a prefix of the
    whole text's ids: the byte-level pre-tokenizer never joins the two sides."""
    from spatten_hls.compiler.realmodels import text

    source = "  ".join(text.default_text()[:6000].split(" ")).replace(". ", ".\n\n 12345 \t")
    whole = smollm2.encode(source)
    for chars in range(7, 3000, 61):
        cut = text.word_end_before(source, chars)
        assert cut is not None and cut <= chars and source[cut].isspace()
        ids = smollm2.encode(source[:cut])
        assert np.array_equal(ids, whole[: len(ids)]), chars
