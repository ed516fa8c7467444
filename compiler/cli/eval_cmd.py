"""`spatten eval`: what SpAtten's pruning and quantization cost a real pretrained model."""

from __future__ import annotations

import argparse
import sys

from compiler.config import load_config
from compiler.errors import CompilerError
from compiler.jsonfmt import dumps

DEFAULT_SENTENCES = 64
ENCODERS = ("minilm-l6",)


def add_parser(sub: argparse._SubParsersAction, common: argparse.ArgumentParser,
               model_help: str) -> None:
    p = sub.add_parser(
        "eval", parents=[common], help="fidelity of a real pretrained model under SpAtten",
        description="Run a real pretrained encoder (minilm-l6, the packaged all-MiniLM-L6-v2, or "
                    "a Hugging Face BERT directory) dense in float32 and through the "
                    "bit-accurate simulator with the configured schedule; compare sentence "
                    "embeddings and DRAM traffic.",
    )
    p.add_argument("model", metavar="MODEL", help="minilm-l6 or a Hugging Face BERT directory")
    p.add_argument("--config", metavar="FILE", help="TOML configuration")
    p.add_argument("--text-file", metavar="FILE",
                   help="UTF-8 prose to take sentences from (default: CPython's pydoc_data)")
    p.add_argument("--sentences", type=int, default=DEFAULT_SENTENCES,
                   help=f"number of sentences (default {DEFAULT_SENTENCES})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from compiler.realmodels import bert, text  # needs the realmodels extra: import late

    if args.model in ("smollm2-135m",) or args.model.endswith(".gguf"):
        raise CompilerError("decoder evaluation (SmolLM2 perplexity under KV-cache pruning) is "
                            "not implemented yet; spatten eval takes BERT-family encoders")
    if args.sentences < 2:
        raise CompilerError(f"--sentences {args.sentences}: need at least 2")
    cfg = load_config(args.config)
    model = bert.load_bert(None if args.model in ENCODERS else args.model)
    if args.text_file:
        sentences = [s for s in text.split_sentences(text.read_text_file(args.text_file))
                     if len(s.split()) >= 2][:args.sentences]
        if len(sentences) < 2:
            raise CompilerError(f"{args.text_file}: fewer than 2 sentences")
    else:
        sentences = text.default_sentences(args.sentences)
    from compiler.realmodels.evaluate import evaluate_encoder

    result = evaluate_encoder(model, cfg, sentences)
    if args.json:
        sys.stdout.write(dumps(result.as_dict()))
    else:
        sys.stdout.write(
            f"{result.model}: {result.sentences} sentences, {result.tokens} tokens\n"
            f"mean tokens entering each layer: {result.tokens_per_layer}\n"
            f"embedding cosine vs dense fp32: mean {result.mean_cosine:.5f}, "
            f"min {result.min_cosine:.5f}\n"
            f"nearest-neighbour agreement: {result.nn_agreement:.1%}\n"
            f"attention DRAM: {result.dram_bytes:,} bytes vs dense 12-bit "
            f"{result.dense_dram_bytes:,} ({result.dram_reduction:.2f}x less)\n")
    return 0
