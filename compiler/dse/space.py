"""SPACE.toml: the declared design space of `spatten sweep` / `spatten tune`.

    base = "configs/base.toml"        # optional, relative to SPACE.toml's folder
    [space]                           # dotted config keys -> candidate values
    "token_pruning.keep" = [0.25, 0.5]
    [sweep]
    mode = "grid"                     # grid | random (samples = N, seed = S)
    objectives = ["latency_cycles", "dram_bytes"]
    [eval]                            # optional: real-model fidelity of every point
    text_file = "text.txt"            # relative to SPACE.toml's folder
    tokens = 288

Every key and every candidate value is checked here, against the base config, before any work
starts: a bad one is one `ConfigError` naming SPACE.toml and the key. A *combination* that the
config refuses (a cross-key rule) is a failing point, recorded by the sweep, not an error here.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spatten_hls.compiler.config import SECTIONS, Config, check_value, load_config
from spatten_hls.compiler.dse.metrics import FIDELITY_METRICS, check_metric
from spatten_hls.compiler.errors import ConfigError, brief
from spatten_hls.compiler.input_files import parse_toml, read_text

MAX_POINTS = 100_000  # a grid (or a random sample) larger than this is refused up front
MAX_VALUES = 1_000  # candidate values of one key
DEFAULT_OBJECTIVES = ("latency_cycles", "dram_bytes")
EVAL_KEYS = {  # [eval] key -> (type, lo, hi); the ranges of `spatten eval`'s options
    "text_file": (str, None, None),
    "tokens": (int, 3, 1 << 15),
    "prompt": (int, 1, 1 << 15),
    "sentences": (int, 2, 100_000),
    "protocol": (str, None, None),
}
EVAL_DEFAULTS = {"tokens": 256, "prompt": 32, "sentences": 64, "protocol": "decode"}
PROTOCOLS = ("decode", "prefill")


@dataclass(frozen=True)
class EvalSpec:
    """The real-model fidelity measured at every point (the options of `spatten eval`)."""

    text_file: Path | None
    tokens: int
    prompt: int
    sentences: int
    protocol: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "text_file": None if self.text_file is None else str(self.text_file),
            "tokens": self.tokens,
            "prompt": self.prompt,
            "sentences": self.sentences,
            "protocol": self.protocol,
        }


@dataclass(frozen=True)
class Space:
    source: str  # SPACE.toml's path, for messages
    base: Config
    keys: tuple[str, ...]  # dotted config keys, in the file's order
    values: tuple[tuple[Any, ...], ...]  # candidates of each key
    mode: str
    samples: int | None
    seed: int
    objectives: tuple[str, ...]
    eval: EvalSpec | None

    @property
    def swept_keys(self) -> tuple[str, ...]:
        """The keys with more than one candidate (the others only set the base): what tables
        and reasons name. All keys if none varies."""
        swept = tuple(k for k, v in zip(self.keys, self.values, strict=True) if len(v) > 1)
        return swept or self.keys

    @property
    def grid_size(self) -> int:
        return int(np.prod([len(v) for v in self.values], dtype=object)) if self.values else 1

    def points(self) -> list[dict[str, Any]]:
        """Every point of the sweep in a fixed order: the grid's row-major order (the last
        key varies fastest), or the random sample's grid indices in ascending order."""
        if self.mode == "grid":
            return [dict(zip(self.keys, combo, strict=True)) for combo in self._grid()]
        rng = np.random.default_rng(self.seed)
        picks = sorted(int(i) for i in rng.choice(self.grid_size, self.samples, replace=False))
        return [self._point_at(index) for index in picks]

    def _grid(self) -> Iterator[tuple[Any, ...]]:
        return itertools.product(*self.values)

    def _point_at(self, index: int) -> dict[str, Any]:
        point = {}
        for key, candidates in zip(reversed(self.keys), reversed(self.values), strict=True):
            index, digit = divmod(index, len(candidates))
            point[key] = candidates[digit]
        return {key: point[key] for key in self.keys}

    def config_document(self, point: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The complete config of `point`: the base with the point's keys set."""
        doc = {name: dict(section) for name, section in _complete(self.base).items()}
        for dotted, value in point.items():
            section, key = dotted.split(".", 1)
            doc[section][key] = value
        return doc


def load_space(path: str | Path) -> Space:
    path = Path(path)
    source = str(path)
    raw = parse_toml(read_text(path, "config file", ConfigError), source, ConfigError)
    unknown = sorted(set(raw) - {"base", "space", "sweep", "eval"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key '{unknown[0][:40]}' (known: base, [space], [sweep], [eval])"
        )
    base = _load_base(raw.get("base"), path)
    keys, values = _read_space(_table(raw, "space", source), source)
    mode, samples, seed, objectives = _read_sweep(_table(raw, "sweep", source), source)
    spec = _read_eval(raw["eval"], path) if "eval" in raw else None
    for name in objectives:
        if name in FIDELITY_METRICS and spec is None:
            raise ConfigError(
                f"{source}: objective '{name}' is a fidelity metric; it needs an [eval] table"
            )
    space = Space(source, base, keys, values, mode, samples, seed, objectives, spec)
    limit = space.samples if mode == "random" else space.grid_size
    if mode == "random" and samples > space.grid_size:
        raise ConfigError(
            f"{source}: 'sweep.samples' = {samples} exceeds the {space.grid_size} points of "
            f"the grid"
        )
    if limit > MAX_POINTS:
        raise ConfigError(
            f"{source}: the grid holds {space.grid_size} points, more than the {MAX_POINTS} "
            f'a sweep takes (use mode = "random" with samples = N)'
        )
    return space


def _complete(cfg: Config) -> dict[str, dict[str, Any]]:
    """Every key of every section, unset optional ones (None) left out."""
    return {
        name: {k: v for k, v in section.items() if v is not None}
        for name, section in cfg.to_dict().items()
    }


def _table(raw: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: '{name}' must be a table [{name}], got {brief(table)}")
    return table


def _load_base(base: Any, space_path: Path) -> Config:
    if base is None:
        return Config()
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{space_path}: 'base' must be a config file path, got {brief(base)}")
    try:
        return load_config(space_path.parent / base)
    except ConfigError as exc:
        raise ConfigError(f"{space_path}: 'base': {exc}") from None


def _read_space(
    table: dict[str, Any], source: str
) -> tuple[tuple[str, ...], tuple[tuple[Any, ...], ...]]:
    keys, values = [], []
    for dotted, candidates in table.items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or not key:
            raise ConfigError(
                f"{source}: [space] key '{dotted[:60]}' is not a dotted config key "
                f"(section.key, sections: {', '.join(SECTIONS)})"
            )
        fields = {f.name for f in dataclasses.fields(SECTIONS[section])}
        if key not in fields:
            raise ConfigError(
                f"{source}: [space] unknown key '{dotted[:60]}' (known in [{section}]: "
                f"{', '.join(sorted(fields))})"
            )
        if not isinstance(candidates, list) or not candidates:
            raise ConfigError(
                f"{source}: [space] '{dotted}' must be a non-empty list of candidate values, "
                f"got {brief(candidates)}"
            )
        if len(candidates) > MAX_VALUES:
            raise ConfigError(
                f"{source}: [space] '{dotted}' has {len(candidates)} values, more than {MAX_VALUES}"
            )
        for i, value in enumerate(candidates):
            if value in candidates[:i]:
                raise ConfigError(f"{source}: [space] '{dotted}' repeats {brief(value)}")
            # the value on its own; a rule tying it to another key is the point's business
            check_value(dotted, value, f"{source} [space]")
        keys.append(dotted)
        values.append(tuple(candidates))
    return tuple(keys), tuple(values)


def _read_sweep(table: dict[str, Any], source: str) -> tuple[str, int | None, int, tuple]:
    unknown = sorted(set(table) - {"mode", "samples", "seed", "objectives"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown key 'sweep.{unknown[0][:40]}' (known: mode, samples, seed, "
            f"objectives)"
        )
    mode = table.get("mode", "grid")
    if mode not in ("grid", "random"):
        raise ConfigError(f"{source}: 'sweep.mode' = {brief(mode)} is not one of grid, random")
    samples = table.get("samples")
    if mode == "random":
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ConfigError(
                f"{source}: mode = \"random\" needs 'sweep.samples', a positive integer, "
                f"got {brief(samples)}"
            )
    elif samples is not None:
        raise ConfigError(f"{source}: 'sweep.samples' applies to mode = \"random\"")
    seed = table.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 1 << 63:
        raise ConfigError(f"{source}: 'sweep.seed' must be a non-negative integer")
    objectives = table.get("objectives", list(DEFAULT_OBJECTIVES))
    if not isinstance(objectives, list) or not objectives:
        raise ConfigError(f"{source}: 'sweep.objectives' must be a non-empty list of metrics")
    for name in objectives:
        check_metric(name, f"{source}: 'sweep.objectives'")
    if len(set(objectives)) != len(objectives):
        raise ConfigError(f"{source}: 'sweep.objectives' lists a metric twice")
    return mode, samples, seed, tuple(objectives)


def _read_eval(table: Any, space_path: Path) -> EvalSpec:
    source = str(space_path)
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: 'eval' must be a table [eval], got {brief(table)}")
    values = dict(EVAL_DEFAULTS)
    for key, value in table.items():
        if key not in EVAL_KEYS:
            raise ConfigError(
                f"{source}: unknown key 'eval.{key[:40]}' (known: {', '.join(EVAL_KEYS)})"
            )
        kind, lo, hi = EVAL_KEYS[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ConfigError(
                f"{source}: 'eval.{key}' must be a{'n integer' if kind is int else ' string'}, "
                f"got {brief(value)}"
            )
        if lo is not None and not lo <= value <= hi:
            raise ConfigError(f"{source}: 'eval.{key}' = {value} is out of range [{lo}, {hi}]")
        values[key] = value
    if values["protocol"] not in PROTOCOLS:
        raise ConfigError(
            f"{source}: 'eval.protocol' = {brief(values['protocol'])} is not one of "
            f"{', '.join(PROTOCOLS)}"
        )
    if values["tokens"] < values["prompt"] + 2:
        raise ConfigError(
            f"{source}: 'eval.tokens' = {values['tokens']} must exceed 'eval.prompt' = "
            f"{values['prompt']} by 2 or more"
        )
    text = values.pop("text_file", None)
    return EvalSpec(text_file=None if text is None else space_path.parent / text, **values)
