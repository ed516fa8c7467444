"""Simulation inputs: seeded random Q/K/V or an .npz file, validated against the graph.

Layout (DESIGN.md section 6): float32 arrays `q{L}` [heads, tokens, head_dim] and `k{L}`, `v{L}`
[kv_heads, tokens, head_dim] for every layer L; `tokens` is `seq_len` (summarization) or
`seq_len + gen_tokens` (generation: the prompt's cache plus the generated positions).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from spatten_hls.compiler.errors import SimulationError
from spatten_hls.compiler.ir.graph import GraphInfo

Inputs = dict[str, np.ndarray]

# Q and K entries ~ N(0, QK_STD^2) give scores q.k/sqrt(d) with std QK_STD^2 = 2.5: softmax rows
# are peaked (a few keys carry most of the mass) as in trained models, not flat noise.
QK_STD = 2.5**0.5


def input_shapes(info: GraphInfo) -> dict[str, tuple[int, int, int]]:
    tokens = info.context
    shapes = {}
    for layer in range(info.num_layers):
        shapes[f"q{layer}"] = (info.num_heads, tokens, info.head_dim)
        shapes[f"k{layer}"] = (info.num_kv_heads, tokens, info.head_dim)
        shapes[f"v{layer}"] = (info.num_kv_heads, tokens, info.head_dim)
    return shapes


def random_inputs(info: GraphInfo, seed: int) -> Inputs:
    """Realistic random attention inputs, reproducible from `seed`.

    Keys carry a per-token gain drawn log-normally, so some tokens attract attention in every
    head (as real models' "heavy hitters" do); that gives token importance some structure.
    """
    rng = np.random.default_rng(seed)
    out: Inputs = {}
    for name, shape in input_shapes(info).items():
        x = rng.standard_normal(shape)
        if name[0] == "q":
            x *= QK_STD
        elif name[0] == "k":
            gain = np.exp(0.35 * rng.standard_normal((1, shape[1], 1)))
            x *= QK_STD * gain
        out[name] = x.astype(np.float32)
    return out


def load_inputs_npz(path: Path, info: GraphInfo) -> Inputs:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array
            raise SimulationError(f"{path}: not an .npz archive (a single .npy array?)")
        with loaded as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise SimulationError(f"{path}: no such inputs file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise SimulationError(f"{path}: not a readable .npz file ({exc})") from None
    return check_inputs(arrays, info, str(path))


def check_inputs(arrays: Inputs, info: GraphInfo, source: str) -> Inputs:
    """Every expected key present with the right shape and finite values; no stray keys.

    The `out{L}` and `ref{L}` arrays that `--save` writes next to the inputs are not stray:
    they are ignored, so a saved run can be fed back as `--inputs`.
    """
    shapes = input_shapes(info)
    saved_outputs = {f"{kind}{layer}" for kind in ("out", "ref")
                     for layer in range(info.num_layers)}
    missing = [name for name in shapes if name not in arrays]
    if missing:
        raise SimulationError(f"{source}: missing array(s) {', '.join(missing[:6])}"
                              f"{' ...' if len(missing) > 6 else ''}")
    extra = sorted(set(arrays) - set(shapes) - saved_outputs)
    if extra:
        raise SimulationError(f"{source}: unexpected array(s) {', '.join(extra[:6])} "
                              f"(expected q/k/v0..{info.num_layers - 1})")
    checked: Inputs = {}
    for name, shape in shapes.items():
        a = arrays[name]
        if a.shape != shape:
            raise SimulationError(f"{source}: '{name}' has shape {list(a.shape)}, "
                                  f"expected {list(shape)} [heads, tokens, head_dim]")
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise SimulationError(f"{source}: '{name}' has dtype {a.dtype}, expected float32")
        if not np.all(np.isfinite(a)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise SimulationError(f"{source}: '{name}' holds a non-finite value at {list(bad)}")
        with np.errstate(over="ignore"):
            converted = np.asarray(a, dtype=np.float32)
        if not np.all(np.isfinite(converted)):  # finite float64 beyond float32's range
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(converted))[0])
            raise SimulationError(f"{source}: '{name}' holds a value outside the float32 range "
                                  f"at {list(bad)}")
        checked[name] = converted
    return checked
