"""TOML configuration: defaults, a full valid file, and every class of malformed input.

Each malformed input must raise `ConfigError` whose message names the file, the offending
`section.key` and the value (DESIGN.md section 6).
"""

import dataclasses
from pathlib import Path

import pytest

from spatten_hls.compiler.config import SECTIONS, Config, config_from_dict, load_config
from spatten_hls.compiler.errors import CompilerError, ConfigError
from spatten_hls.compiler.frontend import PRESETS
from spatten_hls.compiler.frontend.builder import check_against_model

FULL_TOML = """\
[model]
seq_len = 200
stage = "generation"
gen_tokens = 16
pooling_pruned = "carry"

[token_pruning]
enabled = true
policy = "per-layer"
schedule = "uniform"
keep = 0.6
granularity = "layer"
keep_per_layer = [1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5]
skip_first = 0.2
keep_first = 1
keep_recent = 4
decay_shift = 5
observation_window = 32

[head_pruning]
enabled = true
keep = 0.75
keep_per_layer = [1.0, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8]
skip_first = 0.25

[value_pruning]
enabled = true
keep = 0.4

[quantization]
q_bits = 10
k_msb_bits = 6
k_lsb_bits = 6
v_bits = 9
progressive = true
requant_threshold = 0.05

[hardware]
head_dim = 32
max_tokens = 2048
multipliers = 512
topk_parallelism = 8
clock_mhz = 250
part = "xcvu9p-flga2104-2L-e"
hbm_channels = 16
hbm_gbps = 12.5
"""


def write(tmp_path: Path, text: str, name: str = "cfg.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_names(message: str, *parts: str) -> None:
    for part in parts:
        assert part in message, f"{part!r} not in error message {message!r}"


# -- defaults ---------------------------------------------------------------------------------


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg == Config()
    assert cfg.source == "<defaults>"
    assert (cfg.model.seq_len, cfg.model.stage, cfg.model.gen_tokens) == (128, "summarization", 32)
    tp = cfg.token_pruning
    assert (
        tp.enabled,
        tp.keep,
        tp.keep_per_layer,
        tp.skip_first,
        tp.keep_first,
        tp.keep_recent,
    ) == (False, 0.5, None, 0.15, 0, 0)
    hp = cfg.head_pruning
    assert (hp.enabled, hp.keep, hp.keep_per_layer, hp.skip_first) == (False, 0.9, None, 0.30)
    assert (cfg.value_pruning.enabled, cfg.value_pruning.keep) == (False, 0.5)
    q = cfg.quantization
    assert (q.q_bits, q.k_msb_bits, q.k_lsb_bits, q.v_bits, q.progressive, q.requant_threshold) == (
        12,
        8,
        4,
        12,
        False,
        0.1,
    )
    assert q.k_bits == 12
    hw = cfg.hardware
    assert (
        hw.head_dim,
        hw.max_tokens,
        hw.multipliers,
        hw.topk_parallelism,
        hw.clock_mhz,
        hw.part,
        hw.hbm_channels,
        hw.hbm_gbps,
    ) == (64, 1024, 1024, 16, 300.0, "xcu280-fsvh2892-2L-e", 32, 14.375)


def test_empty_file_gives_defaults_with_source(tmp_path):
    path = write(tmp_path, "")
    cfg = load_config(path)
    assert cfg.source == str(path)
    assert dataclasses.replace(cfg, source="<defaults>") == Config()


def test_empty_sections_give_defaults(tmp_path):
    text = "".join(f"[{name}]\n" for name in SECTIONS)
    cfg = load_config(write(tmp_path, text))
    assert cfg.to_dict() == Config().to_dict()


def test_config_is_frozen():
    cfg = Config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.seq_len = 3  # type: ignore[misc]


# -- a full valid file ------------------------------------------------------------------------


def test_full_file_loads_every_key(tmp_path):
    path = write(tmp_path, FULL_TOML)
    cfg = load_config(path)
    assert cfg.source == str(path)
    assert cfg.to_dict() == {
        "model": {
            "seq_len": 200,
            "stage": "generation",
            "gen_tokens": 16,
            "pooling_pruned": "carry",
        },
        "token_pruning": {
            "enabled": True,
            "policy": "per-layer",
            "schedule": "uniform",
            "keep": 0.6,
            "keep_per_layer": [1.0, 1.0, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.6, 0.5, 0.5],
            "granularity": "layer",
            "skip_first": 0.2,
            "keep_first": 1,
            "keep_recent": 4,
            "decay_shift": 5,
            "observation_window": 32,
        },
        "head_pruning": {
            "enabled": True,
            "keep": 0.75,
            "keep_per_layer": [1.0, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.8, 0.8, 0.8],
            "skip_first": 0.25,
        },
        "value_pruning": {"enabled": True, "keep": 0.4},
        "quantization": {
            "q_bits": 10,
            "k_msb_bits": 6,
            "k_lsb_bits": 6,
            "v_bits": 9,
            "progressive": True,
            "requant_threshold": 0.05,
        },
        "hardware": {
            "head_dim": 32,
            "max_tokens": 2048,
            "multipliers": 512,
            "topk_parallelism": 8,
            "clock_mhz": 250.0,
            "part": "xcvu9p-flga2104-2L-e",
            "hbm_channels": 16,
            "hbm_gbps": 12.5,
        },
    }
    # lists become tuples (frozen config), integers given for floats become floats
    assert cfg.token_pruning.keep_per_layer == (
        1.0,
        1.0,
        0.9,
        0.9,
        0.8,
        0.8,
        0.7,
        0.7,
        0.6,
        0.6,
        0.5,
        0.5,
    )
    assert isinstance(cfg.hardware.clock_mhz, float)
    assert cfg.quantization.k_bits == 12


def test_full_file_covers_every_schema_key():
    import tomllib

    raw = tomllib.loads(FULL_TOML)
    for name, cls in SECTIONS.items():
        assert set(raw[name]) == {f.name for f in dataclasses.fields(cls)}, name
    assert set(raw) == set(SECTIONS)


def test_full_file_passes_model_checks(tmp_path):
    # 12 layers (both keep_per_layer lists), a decoder for generation, 200 + 16 <= 1024
    cfg = load_config(write(tmp_path, FULL_TOML))
    # every key but the encoders' pooling of pruned tokens, which a decoder refuses (below)
    model = dataclasses.replace(cfg.model, pooling_pruned="drop")
    check_against_model(dataclasses.replace(cfg, model=model), PRESETS["gpt2-small"])


def test_config_error_is_a_compiler_error():
    assert issubclass(ConfigError, CompilerError)


def test_boundary_values_are_accepted():
    cfg = config_from_dict(
        {
            "token_pruning": {"keep": 1.0, "skip_first": 0.0, "keep_per_layer": [0.5, 0.5]},
            "quantization": {"q_bits": 16, "k_msb_bits": 15, "k_lsb_bits": 1, "v_bits": 2},
            "model": {"seq_len": 1},
        }
    )
    assert cfg.token_pruning.keep == 1.0
    assert cfg.quantization.k_bits == 16
    assert cfg.model.seq_len == 1


# -- malformed files: each names the file, the key and the value ------------------------------

MALFORMED = [
    # (id, toml text, fragments the message must contain)
    ("bad-syntax", "[model\nseq_len = 3\n", ["invalid TOML", "line 1"]),
    ("unknown-section", "[pruning]\nkeep = 0.5\n", ["[pruning]", "unknown section"]),
    ("unknown-key", "[model]\nsequence_length = 64\n", ["'model.sequence_length'", "unknown"]),
    ("string-for-int", '[model]\nseq_len = "64"\n', ["'model.seq_len'", "'64'", "integer"]),
    ("bool-for-int", "[quantization]\nq_bits = true\n", ["'quantization.q_bits'", "True"]),
    ("float-for-int", "[model]\nseq_len = 64.0\n", ["'model.seq_len'", "64.0"]),
    (
        "int-for-bool",
        "[token_pruning]\nenabled = 1\n",
        ["'token_pruning.enabled'", "got 1", "boolean"],
    ),
    ("string-for-float", '[value_pruning]\nkeep = "half"\n', ["'value_pruning.keep'", "'half'"]),
    ("int-for-string", "[model]\nstage = 1\n", ["'model.stage'", "got 1", "string"]),
    ("keep-zero", "[token_pruning]\nkeep = 0\n", ["'token_pruning.keep'", "0.0", "[1e-06, 1]"]),
    ("keep-above-one", "[head_pruning]\nkeep = 1.5\n", ["'head_pruning.keep'", "1.5"]),
    ("keep-negative", "[value_pruning]\nkeep = -0.1\n", ["'value_pruning.keep'", "-0.1"]),
    (
        "skip-first-one",
        "[token_pruning]\nskip_first = 1.0\n",
        ["'token_pruning.skip_first'", "1.0", "[0, 1)"],
    ),
    (
        "keep-per-layer-increasing",
        "[token_pruning]\nkeep_per_layer = [0.9, 0.5, 0.7]\n",
        ["'token_pruning.keep_per_layer'", "non-increasing", "0.7", "0.5"],
    ),
    (
        "keep-per-layer-entry-zero",
        "[head_pruning]\nkeep_per_layer = [1.0, 0.0]\n",
        ["'head_pruning.keep_per_layer[1]'", "0.0"],
    ),
    (
        "keep-per-layer-entry-string",
        '[token_pruning]\nkeep_per_layer = [1.0, "x"]\n',
        ["'token_pruning.keep_per_layer[1]'", "'x'"],
    ),
    (
        "keep-per-layer-empty",
        "[token_pruning]\nkeep_per_layer = []\n",
        ["'token_pruning.keep_per_layer'", "[]"],
    ),
    (
        "keep-per-layer-scalar",
        "[token_pruning]\nkeep_per_layer = 0.5\n",
        ["'token_pruning.keep_per_layer'", "0.5", "list"],
    ),
    ("q-bits-1", "[quantization]\nq_bits = 1\n", ["'quantization.q_bits'", "= 1 ", "[2, 16]"]),
    ("q-bits-17", "[quantization]\nq_bits = 17\n", ["'quantization.q_bits'", "17", "[2, 16]"]),
    ("v-bits-0", "[quantization]\nv_bits = 0\n", ["'quantization.v_bits'", "= 0 "]),
    (
        "k-bits-sum-17",
        "[quantization]\nk_msb_bits = 9\nk_lsb_bits = 8\n",
        ["'quantization.k_msb_bits'", "'quantization.k_lsb_bits'", "17"],
    ),
    (
        "progressive-no-lsb",
        "[quantization]\nprogressive = true\nk_lsb_bits = 0\n",
        ["'quantization.progressive'", "'quantization.k_lsb_bits'"],
    ),
    ("stage-foo", '[model]\nstage = "foo"\n', ["'model.stage'", "'foo'", "summarization"]),
    ("seq-len-zero", "[model]\nseq_len = 0\n", ["'model.seq_len'", "= 0 "]),
    (
        "keep-first-negative",
        "[token_pruning]\nkeep_first = -1\n",
        ["'token_pruning.keep_first'", "-1"],
    ),
    ("nan", "[value_pruning]\nkeep = nan\n", ["'value_pruning.keep'", "nan", "finite"]),
    ("inf", "[hardware]\nclock_mhz = inf\n", ["'hardware.clock_mhz'", "inf", "finite"]),
    (
        "minus-inf",
        "[quantization]\nrequant_threshold = -inf\n",
        ["'quantization.requant_threshold'", "-inf"],
    ),
    (
        "nan-in-list",
        "[head_pruning]\nkeep_per_layer = [1.0, nan]\n",
        ["'head_pruning.keep_per_layer[1]'", "nan"],
    ),
    ("clock-zero", "[hardware]\nclock_mhz = 0\n", ["'hardware.clock_mhz'", "0.0", "[1, 1000]"]),
    (
        "clock-absurd",
        "[hardware]\nclock_mhz = 1e30\n",
        ["'hardware.clock_mhz'", "1e+30", "[1, 1000]"],
    ),
    ("hbm-absurd", "[hardware]\nhbm_gbps = 1e300\n", ["'hardware.hbm_gbps'", "1e+300"]),
    (
        "multipliers-absurd",
        "[hardware]\nmultipliers = 1000000000\n",
        ["'hardware.multipliers'", "1000000000", "[1, 65536]"],
    ),
    ("seq-len-absurd", "[model]\nseq_len = 1000000000\n", ["'model.seq_len'", "[1, 32768]"]),
    ("keep-tiny", "[value_pruning]\nkeep = 1e-300\n", ["'value_pruning.keep'", "1e-300"]),
    (
        "int-beyond-float",
        "[hardware]\nclock_mhz = 9" + "9" * 400 + "\n",
        ["'hardware.clock_mhz'", "out of range"],
    ),
    ("int-of-5000-digits", "[model]\nseq_len = " + "9" * 5000 + "\n", ["invalid TOML", "digits"]),
    (
        "nested-5000-deep",
        "[model]\nseq_len = " + "[" * 5000 + "]" * 5000 + "\n",
        ["invalid TOML", "nested too deeply"],
    ),
    (
        "part-injection",
        '[hardware]\npart = "xcu280]; exec touch pwned; #"\n',
        ["'hardware.part'", "Xilinx part name"],
    ),
    ("part-newline", '[hardware]\npart = "xcu280\\nsyn.top=evil"\n', ["'hardware.part'"]),
    ("empty-part", '[hardware]\npart = "  "\n', ["'hardware.part'", "'  '"]),
    ("section-not-table", "model = 3\n", ["'model'", "3"]),
]


@pytest.mark.parametrize(
    "text, fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_file_raises_config_error(tmp_path, text, fragments):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    assert_names(message, *fragments)


def test_missing_file(tmp_path):
    path = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match="no such config file") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[hardware]\npart = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_config_from_dict_names_its_source():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"model": {"seq_len": -5}}, source="inline")
    assert_names(str(info.value), "inline: ", "'model.seq_len'", "-5")


# -- checks against the model -----------------------------------------------------------------


def test_keep_per_layer_wrong_length(tmp_path):
    path = write(tmp_path, "[token_pruning]\nkeep_per_layer = [0.9, 0.8, 0.7]\n")
    cfg = load_config(path)  # fine on its own: the length needs the model
    with pytest.raises(ConfigError) as info:
        check_against_model(cfg, PRESETS["bert-base"])
    assert_names(
        str(info.value),
        f"{path}: ",
        "'token_pruning.keep_per_layer'",
        "3 entries",
        "bert-base",
        "12 layers",
    )


def test_head_keep_per_layer_wrong_length(tmp_path):
    path = write(tmp_path, "[head_pruning]\nkeep_per_layer = " + str([1.0] * 12) + "\n")
    cfg = load_config(path)
    check_against_model(cfg, PRESETS["gpt2-small"])  # 12 layers: fine
    with pytest.raises(ConfigError) as info:
        check_against_model(cfg, PRESETS["minilm-l6"])
    assert_names(
        str(info.value), f"{path}: ", "'head_pruning.keep_per_layer'", "12 entries", "6 layers"
    )


def test_seq_len_beyond_max_positions(tmp_path):
    path = write(tmp_path, "[model]\nseq_len = 513\n")
    cfg = load_config(path)
    check_against_model(cfg, PRESETS["gpt2-small"])  # 1024 positions
    with pytest.raises(ConfigError) as info:
        check_against_model(cfg, PRESETS["bert-base"])  # 512 positions
    assert_names(str(info.value), f"{path}: ", "'model.seq_len'", "513", "bert-base", "512")


def test_seq_len_at_max_positions_is_fine():
    check_against_model(config_from_dict({"model": {"seq_len": 512}}), PRESETS["bert-base"])


def test_generation_context_beyond_max_positions(tmp_path):
    path = write(tmp_path, '[model]\nstage = "generation"\nseq_len = 1000\ngen_tokens = 25\n')
    cfg = load_config(path)
    with pytest.raises(ConfigError) as info:
        check_against_model(cfg, PRESETS["gpt2-medium"])
    assert_names(
        str(info.value), f"{path}: ", "'model.seq_len'", "'model.gen_tokens'", "1025", "1024"
    )
    check_against_model(
        dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, gen_tokens=24)),
        PRESETS["gpt2-medium"],
    )


def test_generation_on_an_encoder(tmp_path):
    path = write(tmp_path, '[model]\nstage = "generation"\n')
    cfg = load_config(path)
    check_against_model(cfg, PRESETS["smollm2-135m"])
    with pytest.raises(ConfigError) as info:
        check_against_model(cfg, PRESETS["bert-base"])
    assert_names(
        str(info.value), f"{path}: ", "'model.stage'", '"generation"', "bert-base", "encoder"
    )


def test_defaults_fit_every_preset():
    for name, spec in PRESETS.items():
        check_against_model(Config(), spec)  # must not raise
        assert Config().model.seq_len <= spec.max_positions, name


def test_decay_shift_needs_the_per_layer_policy() -> None:
    section = {"enabled": True, "policy": "current", "decay_shift": 3}
    with pytest.raises(ConfigError, match=r"'token_pruning.decay_shift' = 3 needs .*per-layer"):
        config_from_dict({"token_pruning": section}, source="c.toml")
    section["policy"] = "per-layer"
    assert config_from_dict({"token_pruning": section}).token_pruning.decay_shift == 3
    with pytest.raises(ConfigError, match="decay_shift"):
        config_from_dict({"token_pruning": {**section, "decay_shift": 17}})


def test_the_observation_window_needs_a_policy_that_scores() -> None:
    section = {"enabled": True, "policy": "window", "observation_window": 8}
    with pytest.raises(ConfigError, match=r"'token_pruning.observation_window' = 8 needs"):
        config_from_dict({"token_pruning": section}, source="c.toml")
    for policy in ("cascade", "per-layer", "current"):
        cfg = config_from_dict({"token_pruning": {**section, "policy": policy}})
        assert cfg.token_pruning.observation_window == 8
    with pytest.raises(ConfigError, match="observation_window"):
        config_from_dict(
            {"token_pruning": {**section, "policy": "current", "observation_window": -1}}
        )


def test_pooling_of_pruned_tokens_is_an_encoder_setting(tmp_path):
    path = write(tmp_path, '[model]\npooling_pruned = "carry"\n')
    cfg = load_config(path)
    check_against_model(cfg, PRESETS["bert-base"])
    with pytest.raises(ConfigError) as info:
        check_against_model(cfg, PRESETS["gpt2-small"])
    assert_names(str(info.value), str(path), "'model.pooling_pruned'", "decoder")
