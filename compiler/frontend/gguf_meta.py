"""Read the attention shape of a model from the metadata of a GGUF file (llama.cpp's format).

Only the key/value header is used; tensor data is never touched (`GGUFReader` memory-maps the
file, so even multi-gigabyte checkpoints cost nothing to open). Keys follow llama.cpp's
`{arch}.block_count`, `{arch}.attention.head_count`, ... naming. Every error is one line that
names the file and the offending key or value.
"""

from __future__ import annotations

from pathlib import Path

from gguf import GGUFReader, GGUFValueType
from gguf.gguf_reader import ReaderField

from spatten_hls.compiler import limits
from spatten_hls.compiler.errors import FrontendError, printable
from spatten_hls.compiler.frontend.gguf_header import check_gguf_header
from spatten_hls.compiler.frontend.model import ModelSpec, display_name
from spatten_hls.compiler.input_files import check_regular_file

# general.architecture -> model family. Qwen2 is a llama-style decoder (RoPE, GQA).
ARCHITECTURES: dict[str, str] = {"llama": "llama", "qwen2": "llama", "gpt2": "gpt2", "bert": "bert"}

_INT_TYPES = frozenset(
    {
        GGUFValueType.UINT8,
        GGUFValueType.INT8,
        GGUFValueType.UINT16,
        GGUFValueType.INT16,
        GGUFValueType.UINT32,
        GGUFValueType.INT32,
        GGUFValueType.UINT64,
        GGUFValueType.INT64,
    }
)

# What a truncated or foreign file makes GGUFReader raise (bad magic and version are
# ValueError; short reads surface as ValueError/IndexError from numpy views; empty files
# cannot be memory-mapped).
_READER_ERRORS = (ValueError, IndexError, KeyError, TypeError, OverflowError, OSError)


def open_gguf(path: Path) -> GGUFReader:
    """A reader of the GGUF file at `path`, after the bounded header checks."""
    size = check_regular_file(path, "GGUF file", FrontendError)
    check_gguf_header(path, size)
    try:
        return GGUFReader(path)
    except FileNotFoundError:
        raise FrontendError(f"{path}: no such file") from None
    except (*_READER_ERRORS, RecursionError) as exc:
        raise FrontendError(
            f"{path}: not a valid GGUF file ({printable(str(exc))[:120]})"
        ) from None


def _type_name(field: ReaderField) -> str:
    return "/".join(t.name.lower() for t in field.types) or "unknown"


def _string(reader: GGUFReader, key: str, path: Path) -> str | None:
    """A string-valued key, None when absent."""
    field = reader.get_field(key)
    if field is None:
        return None
    if field.types != [GGUFValueType.STRING]:
        raise FrontendError(f"{path}: key '{key}' must be a string, got {_type_name(field)}")
    try:
        return str(field.contents())
    except UnicodeDecodeError:
        raise FrontendError(f"{path}: key '{key}' is not valid UTF-8") from None


def _int(reader: GGUFReader, key: str, path: Path, limit: int, default: int | None = None) -> int:
    """A positive integer key.

    llama.cpp writes per-layer arrays for some head counts; those are accepted when every
    layer agrees, since the compiler models one attention shape for all layers.
    """
    field = reader.get_field(key)
    if field is None:
        if default is not None:
            return default
        raise FrontendError(f"{path}: missing required key '{key}'")
    types = field.types
    if types and types[0] == GGUFValueType.ARRAY and types[-1] in _INT_TYPES:
        values = sorted(set(field.contents()))
        if len(values) != 1:
            raise FrontendError(
                f"{path}: key '{key}' varies per layer ({values}); only a "
                f"uniform value is supported"
            )
        value = int(values[0])
    elif len(types) == 1 and types[0] in _INT_TYPES:
        value = int(field.contents())
    else:
        raise FrontendError(f"{path}: key '{key}' must be an integer, got {_type_name(field)}")
    if value < 1:
        raise FrontendError(f"{path}: key '{key}' must be positive, got {value}")
    if value > limit:
        raise FrontendError(f"{path}: key '{key}' = {value} exceeds the limit of {limit}")
    return value


def _model_name(reader: GGUFReader, path: Path) -> str:
    """`general.name` in CLI style ("SmolLM2 135M" -> "smollm2-135m"), else the file stem."""
    name = (_string(reader, "general.name", path) or "").strip()
    return display_name("-".join(name.lower().split()) if name else path.stem)


def read_gguf(path: Path) -> ModelSpec:
    """Read a `ModelSpec` from the metadata of the GGUF file at `path`."""
    path = Path(path)
    reader = open_gguf(path)
    arch = _string(reader, "general.architecture", path)
    if arch is None:
        raise FrontendError(f"{path}: missing required key 'general.architecture'")
    family = ARCHITECTURES.get(arch)
    if family is None:
        raise FrontendError(
            f"{path}: unsupported architecture '{arch}' in "
            f"'general.architecture' (supported: {', '.join(ARCHITECTURES)})"
        )
    layers = _int(reader, f"{arch}.block_count", path, limits.MAX_LAYERS)
    heads = _int(reader, f"{arch}.attention.head_count", path, limits.MAX_HEADS)
    kv_heads = _int(
        reader, f"{arch}.attention.head_count_kv", path, limits.MAX_HEADS, default=heads
    )
    hidden = _int(reader, f"{arch}.embedding_length", path, limits.MAX_HIDDEN)
    positions = _int(reader, f"{arch}.context_length", path, limits.MAX_POSITIONS)
    head_dim = (
        _int(reader, f"{arch}.attention.key_length", path, limits.MAX_HEAD_DIM, default=0) or None
    )
    if head_dim is None:
        if hidden % heads:
            raise FrontendError(
                f"{path}: '{arch}.embedding_length' = {hidden} is not divisible "
                f"by '{arch}.attention.head_count' = {heads} (and no "
                f"'{arch}.attention.key_length' is given)"
            )
        head_dim = hidden // heads
    if heads % kv_heads:
        raise FrontendError(
            f"{path}: '{arch}.attention.head_count' = {heads} is not a multiple "
            f"of '{arch}.attention.head_count_kv' = {kv_heads}"
        )
    return ModelSpec(
        name=_model_name(reader, path),
        family=family,
        num_layers=layers,
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim,
        hidden_size=hidden,
        max_positions=positions,
        causal=family != "bert",
        source=str(path),
    )
