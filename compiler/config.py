"""TOML configuration: the schema, its defaults, and validation against a model.

Every key is optional; unknown keys, wrong types and out-of-range values raise `ConfigError`
naming the file, the `section.key` and the value. `load_config` checks the file on its own;
`frontend.builder.check_against_model` adds the checks that need the model (lengths,
positions).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import ConfigError, brief
from spatten_hls.compiler.input_files import parse_toml, read_text
from spatten_hls.compiler.ir.graph import STAGES, TOKEN_POLICIES


@dataclass(frozen=True)
class ModelSection:
    seq_len: int = 128
    stage: str = "summarization"
    gen_tokens: int = 32
    pooling_pruned: str = "drop"  # encoders: pruned tokens leave the mean pool, or carry in


@dataclass(frozen=True)
class TokenPruningSection:
    enabled: bool = False
    policy: str = "cascade"
    schedule: str = "ramp"
    keep: float = 0.5
    keep_per_layer: tuple[float, ...] | None = None
    granularity: str = "layer"
    skip_first: float = 0.15
    keep_first: int = 0
    keep_recent: int = 0
    decay_shift: int = 0  # per-layer scores: each step first loses score >> decay_shift
    observation_window: int = 0  # only the last N query rows of an invocation score (0: all)


@dataclass(frozen=True)
class HeadPruningSection:
    enabled: bool = False
    keep: float = 0.9
    keep_per_layer: tuple[float, ...] | None = None
    skip_first: float = 0.30


@dataclass(frozen=True)
class ValuePruningSection:
    enabled: bool = False
    keep: float = 0.5


@dataclass(frozen=True)
class QuantizationSection:
    q_bits: int = 12
    k_msb_bits: int = 8
    k_lsb_bits: int = 4
    v_bits: int = 12
    progressive: bool = False
    requant_threshold: float = 0.1

    @property
    def k_bits(self) -> int:
        return self.k_msb_bits + self.k_lsb_bits


@dataclass(frozen=True)
class HardwareSection:
    head_dim: int = 64
    max_tokens: int = 1024
    multipliers: int = 1024
    topk_parallelism: int = 16
    clock_mhz: float = 300.0
    part: str = "xcu280-fsvh2892-2L-e"
    hbm_channels: int = 32
    hbm_gbps: float = 14.375


@dataclass(frozen=True)
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    token_pruning: TokenPruningSection = field(default_factory=TokenPruningSection)
    head_pruning: HeadPruningSection = field(default_factory=HeadPruningSection)
    value_pruning: ValuePruningSection = field(default_factory=ValuePruningSection)
    quantization: QuantizationSection = field(default_factory=QuantizationSection)
    hardware: HardwareSection = field(default_factory=HardwareSection)
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict of every section (for reports and generated READMEs)."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name != "source":
                section = dataclasses.asdict(getattr(self, f.name))
                out[f.name] = {
                    k: (list(v) if isinstance(v, tuple) else v) for k, v in section.items()
                }
        return out

    def to_toml(self) -> str:
        """The config as TOML that `load_config` reads back to an equal `Config` (unset
        optional keys are left out)."""
        doc = {
            name: {k: v for k, v in section.items() if v is not None}
            for name, section in self.to_dict().items()
        }
        return tomli_w.dumps(doc)


SECTIONS: dict[str, type] = {
    "model": ModelSection,
    "token_pruning": TokenPruningSection,
    "head_pruning": HeadPruningSection,
    "value_pruning": ValuePruningSection,
    "quantization": QuantizationSection,
    "hardware": HardwareSection,
}

# (min, max) inclusive bounds of every integer key (docs/cli.md lists them).
_INT_RANGES: dict[str, tuple[int, int]] = {
    "model.seq_len": (1, limits.MAX_SEQ_LEN),
    "model.gen_tokens": (1, limits.MAX_GEN_TOKENS),
    "token_pruning.keep_first": (0, limits.MAX_SEQ_LEN + limits.MAX_GEN_TOKENS),
    "token_pruning.keep_recent": (0, limits.MAX_SEQ_LEN + limits.MAX_GEN_TOKENS),
    "token_pruning.decay_shift": (0, 16),
    "token_pruning.observation_window": (0, limits.MAX_SEQ_LEN + limits.MAX_GEN_TOKENS),
    "quantization.q_bits": (2, 16),
    "quantization.k_msb_bits": (1, 15),
    "quantization.k_lsb_bits": (0, 14),
    "quantization.v_bits": (2, 16),
    "hardware.head_dim": (1, 256),
    "hardware.max_tokens": (1, limits.MAX_BUFFER_TOKENS),
    "hardware.multipliers": (1, 1 << 16),
    "hardware.topk_parallelism": (1, 1024),
    "hardware.hbm_channels": (1, 128),
}
# Fractions lie in [MIN_FRACTION, 1]: they are read as decimals with at most six places, so a
# smaller one would round to zero.
MIN_FRACTION = 1e-6
_FRACTIONS = {
    "token_pruning.keep",
    "head_pruning.keep",
    "value_pruning.keep",
    "quantization.requant_threshold",
}
_SKIP_FRACTIONS = {"token_pruning.skip_first", "head_pruning.skip_first"}
# (min, max) inclusive bounds of the physical quantities.
_FLOAT_RANGES: dict[str, tuple[float, float]] = {
    "hardware.clock_mhz": (1.0, 1000.0),
    "hardware.hbm_gbps": (0.001, 1000.0),
}
# The keys that take one of a few words.
_CHOICES: dict[str, tuple[str, ...]] = {
    "model.stage": STAGES,
    "model.pooling_pruned": ("drop", "carry"),
    "token_pruning.policy": TOKEN_POLICIES,
    "token_pruning.schedule": ("ramp", "uniform"),
    "token_pruning.granularity": ("layer", "kv_head"),
}
# What Vivado accepts as a part name (e.g. xcu280-fsvh2892-2L-e); it reaches Tcl and cfg files.
PART_NAME = re.compile(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*")
MAX_PART_NAME = 64


def load_config(path: str | Path | None) -> Config:
    """Read and validate a TOML file; `None` gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    text = read_text(path, "config file", ConfigError)
    return config_from_dict(parse_toml(text, str(path), ConfigError), source=str(path))


def config_from_dict(raw: dict[str, Any], source: str = "<dict>") -> Config:
    """Validate a parsed TOML document and build a `Config`."""
    sections = {}
    for name, table in raw.items():
        if name not in SECTIONS:
            raise ConfigError(
                f"{source}: unknown section [{name[:40]}] (known: {', '.join(SECTIONS)})"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: '{name}' must be a table [{name}], got {brief(table)}")
        sections[name] = _build_section(name, table, source)
    return Config(**sections, source=source)


def check_value(dotted_key: str, value: Any, source: str) -> Any:
    """One `section.key` value checked on its own (type, range, choices), as in a file."""
    section, key = dotted_key.split(".", 1)
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    return _check_value(dotted_key, value, fields[key].type, source)


def _build_section(name: str, table: dict[str, Any], source: str) -> Any:
    cls = SECTIONS[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        if key not in fields:
            raise ConfigError(
                f"{source}: unknown key '{name}.{key[:40]}' (known: {', '.join(fields)})"
            )
        values[key] = _check_value(f"{name}.{key}", value, fields[key].type, source)
    section = cls(**values)
    _check_section(name, section, source)
    return section


def _check_value(key: str, value: Any, type_name: str, source: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: '{key}' must be {expected}, got {brief(value)}")

    if type_name == "bool":
        if not isinstance(value, bool):
            raise bad("a boolean")
        return value
    if type_name == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("an integer")
        lo, hi = _INT_RANGES[key]
        if not lo <= value <= hi:
            raise ConfigError(f"{source}: '{key}' = {brief(value)} is out of range [{lo}, {hi}]")
        return value
    if type_name == "float":
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise bad("a number")
        return _check_float(key, _as_float(key, value, source), source)
    if type_name == "str":
        if not isinstance(value, str):
            raise bad("a string")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise ConfigError(
                f"{source}: '{key}' = {brief(value)} is not one of {', '.join(_CHOICES[key])}"
            )
        if key == "hardware.part" and (
            len(value) > MAX_PART_NAME or not PART_NAME.fullmatch(value)
        ):
            raise bad(
                f"a Xilinx part name (letters, digits and '-', at most {MAX_PART_NAME} "
                f"characters, e.g. xcu280-fsvh2892-2L-e)"
            )
        return value
    # keep_per_layer: a list of fractions
    if not isinstance(value, list) or not value:
        raise bad("a non-empty list of numbers")
    fractions = []
    for i, item in enumerate(value):
        if not isinstance(item, int | float) or isinstance(item, bool):
            raise ConfigError(f"{source}: '{key}[{i}]' must be a number, got {brief(item)}")
        fractions.append(
            _check_float(
                f"{key}[{i}]", _as_float(f"{key}[{i}]", item, source), source, fraction=True
            )
        )
    for i in range(1, len(fractions)):
        if fractions[i] > fractions[i - 1]:
            raise ConfigError(
                f"{source}: '{key}' must be non-increasing (cascade pruning never revives "
                f"tokens), but entry {i} = {fractions[i]} > entry {i - 1} = {fractions[i - 1]}"
            )
    return tuple(fractions)


def _as_float(key: str, value: int | float, source: str) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer beyond float's range
        raise ConfigError(f"{source}: '{key}' = {brief(value)} is out of range") from None


def _check_float(key: str, value: float, source: str, fraction: bool = False) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ConfigError(f"{source}: '{key}' must be finite, got {value}")
    if fraction or key in _FRACTIONS:
        if not MIN_FRACTION <= value <= 1.0:
            raise ConfigError(f"{source}: '{key}' = {value} must lie in [{MIN_FRACTION:g}, 1]")
    elif key in _SKIP_FRACTIONS:
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{source}: '{key}' = {value} must lie in [0, 1)")
    elif key in _FLOAT_RANGES:
        lo, hi = _FLOAT_RANGES[key]
        if not lo <= value <= hi:
            raise ConfigError(f"{source}: '{key}' = {value} is out of range [{lo:g}, {hi:g}]")
    return value


def _check_section(name: str, section: Any, source: str) -> None:
    if name == "token_pruning" and section.granularity == "kv_head" and section.policy == "cascade":
        raise ConfigError(
            f"{source}: 'token_pruning.granularity' = \"kv_head\" needs a per-layer policy "
            f'("per-layer", "current" or "window"): the cascade carries a selection to later '
            f"layers, whose KV heads are other heads"
        )
    if name == "token_pruning" and section.decay_shift and section.policy != "per-layer":
        raise ConfigError(
            f"{source}: 'token_pruning.decay_shift' = {section.decay_shift} needs "
            f"'token_pruning.policy' = \"per-layer\": only its scores accumulate over the steps "
            f'(policy is "{section.policy}")'
        )
    if name == "token_pruning" and section.observation_window and section.policy == "window":
        raise ConfigError(
            f"{source}: 'token_pruning.observation_window' = {section.observation_window} "
            f'needs a policy that scores tokens ("cascade", "per-layer" or "current"); '
            f'"window" keeps the most recent ones'
        )
    if name == "quantization":
        if section.k_bits > 16 or section.k_bits < 2:
            raise ConfigError(
                f"{source}: 'quantization.k_msb_bits' + 'quantization.k_lsb_bits' = "
                f"{section.k_bits} must lie in [2, 16]"
            )
        if section.progressive and section.k_lsb_bits == 0:
            raise ConfigError(
                f"{source}: 'quantization.progressive' = true needs 'quantization.k_lsb_bits' > 0"
            )
