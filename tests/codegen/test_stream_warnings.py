"""Stream misuse in the emitted design is a failure: the C-simulation stream model
(hls_stream.h) warns when a process reads a FIFO that was not filled or leaves rows in one (the
RTL would hang there), and both `spatten csim` and the in-process harness turn that into one."""

from __future__ import annotations

import ctypes

import pytest

from spatten_hls.compiler.codegen.csim import STREAM_WARNING
from spatten_hls.compiler.codegen.harness import DesignLibrary, StreamMisuse
from spatten_hls.compiler.codegen.toolchain import ap_types_include


def test_the_pattern_matches_both_warnings_of_the_stream_model() -> None:
    header = (ap_types_include() / "hls_stream.h").read_text(errors="replace")
    for message in ("' contains leftover data,", "' is read while empty,"):
        assert message in header  # the model's own wording
        assert STREAM_WARNING.search(f"WARNING: Hls::stream 'k_msb{message} which may ...")
    assert not STREAM_WARNING.search("layer 0: ok")


def test_the_harness_sees_what_the_library_prints_and_refuses_it() -> None:
    libc = ctypes.CDLL(None)
    printed = DesignLibrary._printing(
        lambda: libc.puts(b"WARNING: Hls::stream 'v_rows' is read while empty,")
    )
    assert "v_rows" in printed
    with pytest.raises(StreamMisuse, match="1 stream warnings"):
        DesignLibrary._check_streams(printed)
    DesignLibrary._check_streams("6 layers: ok")  # nothing printed by the model: no error
