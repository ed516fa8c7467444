"""Simulation inputs: seeded random Q/K/V or an .npz file, validated against the graph.

Layout (DESIGN.md section 6): float32 arrays `q{L}` [heads, tokens, head_dim] and `k{L}`, `v{L}`
[kv_heads, tokens, head_dim] for every layer L; `tokens` is `seq_len` (summarization) or
`seq_len + gen_tokens` (generation: the prompt's cache plus the generated positions).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import SimulationError, brief, printable
from spatten_hls.compiler.input_files import check_regular_file
from spatten_hls.compiler.ir.graph import GraphInfo, query_rows
from spatten_hls.compiler.limits import format_bytes

Inputs = dict[str, np.ndarray]
MAX_EXTRA_BYTES = 1 << 30  # arrays beside the inputs (saved outputs) are at most this large
HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}

# Q and K entries ~ N(0, QK_STD^2) give scores q.k/sqrt(d) with std QK_STD^2 = 2.5: softmax rows
# are peaked (a few keys carry most of the mass) as in trained models, not flat noise.
QK_STD = 2.5**0.5


def working_set_bytes(info: GraphInfo) -> int:
    """Peak memory a simulation of `info` plans for, roughly: float32 inputs, float64 codes of
    every layer (generation keeps them all), outputs and references, and the score matrices of
    two worker threads."""
    rows = info.num_layers * info.context * info.head_dim
    inputs = rows * (info.num_heads + 2 * info.num_kv_heads) * 4
    codes = rows * (info.num_heads + 4 * info.num_kv_heads) * 8
    outputs = rows * info.num_heads * (8 + 4 + 8)
    scores = 2 * 4 * query_rows(info) * info.context * 8
    return inputs + codes + outputs + scores


def check_working_set(info: GraphInfo) -> None:
    need = working_set_bytes(info)
    if need > limits.MAX_WORKING_SET_BYTES:
        raise SimulationError(
            f"simulating {info.model} at {info.context} tokens needs about "
            f"{format_bytes(need)} of memory, over the {format_bytes(limits.MAX_WORKING_SET_BYTES)}"
            f" limit; shorten model.seq_len / model.gen_tokens"
        )


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
    """Read `--inputs`: an .npz archive whose members are .npy arrays of the expected shapes.

    Each member's header is checked (name, dtype, shape) before its data is read, so an
    archive declaring a huge array costs nothing; every error names the file and the key.
    """
    check_regular_file(path, "inputs file", SimulationError)
    shapes = input_shapes(info)
    try:
        with zipfile.ZipFile(path) as archive:
            arrays = {}
            for member in archive.infolist():
                key = member.filename.removesuffix(".npy")
                if member.filename == key:
                    raise SimulationError(
                        f"{path}: member {brief(member.filename)} is not an .npy array"
                    )
                arrays[key] = _read_member(archive, member, key, shapes.get(key), path)
    except zipfile.BadZipFile as exc:
        raise SimulationError(f"{path}: not an .npz archive ({exc})") from None
    except (OSError, EOFError, NotImplementedError) as exc:
        raise SimulationError(f"{path}: cannot read the archive ({exc})") from None
    return check_inputs(arrays, info, str(path))


def _read_member(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    key: str,
    shape: tuple[int, ...] | None,
    path: Path,
) -> np.ndarray:
    where = f"{path}: '{printable(key)[:60]}'"
    with archive.open(member) as handle:
        try:
            version = np.lib.format.read_magic(handle)
            read_header = HEADER_READERS.get(version)
            if read_header is None:
                raise ValueError(f".npy format version {version} is not supported")
            header = read_header(handle)
        except (ValueError, EOFError, SyntaxError) as exc:
            raise SimulationError(f"{where} is not a valid .npy array ({exc})") from None
        found, fortran, dtype = header
        if shape is None:  # a saved output (out{L}, ref{L}) or a stray key: shape not read
            found_shape = tuple(found)
            if int(np.prod(found_shape, dtype=np.float64)) * dtype.itemsize > MAX_EXTRA_BYTES:
                raise SimulationError(
                    f"{where} declares {list(found_shape)} elements: too large for an input archive"
                )
        elif tuple(found) != shape:
            raise SimulationError(
                f"{where} has shape {list(found)}, expected {list(shape)} [heads, tokens, head_dim]"
            )
        if dtype.hasobject or dtype.kind not in "fiu":
            raise SimulationError(f"{where} has dtype {dtype}, expected float32")
        count = int(np.prod(found, dtype=np.int64))
        data = handle.read(count * dtype.itemsize + 1)
        if len(data) != count * dtype.itemsize:
            raise SimulationError(
                f"{where} holds {len(data)} data bytes, its header declares "
                f"{count * dtype.itemsize}"
            )
    array = np.frombuffer(data, dtype=dtype)
    order = "F" if fortran else "C"
    return array.reshape(found, order=order)


def check_inputs(arrays: Inputs, info: GraphInfo, source: str) -> Inputs:
    """Every expected key present with the right shape and finite values; no stray keys.

    The `out{L}` and `ref{L}` arrays that `--save` writes next to the inputs are not stray:
    they are ignored, so a saved run can be fed back as `--inputs`.
    """
    shapes = input_shapes(info)
    saved_outputs = {
        f"{kind}{layer}" for kind in ("out", "ref") for layer in range(info.num_layers)
    }
    missing = [name for name in shapes if name not in arrays]
    if missing:
        raise SimulationError(
            f"{source}: missing array(s) {', '.join(missing[:6])}"
            f"{' ...' if len(missing) > 6 else ''}"
        )
    extra = sorted(set(arrays) - set(shapes) - saved_outputs)
    if extra:
        raise SimulationError(
            f"{source}: unexpected array(s) {', '.join(extra[:6])} "
            f"(expected q/k/v0..{info.num_layers - 1})"
        )
    checked: Inputs = {}
    for name, shape in shapes.items():
        a = arrays[name]
        if a.shape != shape:
            raise SimulationError(
                f"{source}: '{name}' has shape {list(a.shape)}, "
                f"expected {list(shape)} [heads, tokens, head_dim]"
            )
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise SimulationError(f"{source}: '{name}' has dtype {a.dtype}, expected float32")
        if not np.all(np.isfinite(a)):
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
            raise SimulationError(f"{source}: '{name}' holds a non-finite value at {list(bad)}")
        with np.errstate(over="ignore"):
            converted = np.asarray(a, dtype=np.float32)
        if not np.all(np.isfinite(converted)):  # finite float64 beyond float32's range
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(converted))[0])
            raise SimulationError(
                f"{source}: '{name}' holds a value outside the float32 range at {list(bad)}"
            )
        checked[name] = converted
    return checked
