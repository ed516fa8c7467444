"""`spatten eval`: what SpAtten's pruning and quantization cost a real pretrained model."""

from __future__ import annotations

import argparse
import sys

from spatten_hls.compiler.cli.argtypes import int_in
from spatten_hls.compiler.config import load_config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.optional import require

DEFAULT_SENTENCES = 64
MAX_SENTENCES = 100_000
MAX_TOKENS = 1 << 15
DEFAULT_TOKENS = 256
DEFAULT_PROMPT = 32
ENCODERS = ("minilm-l6",)
DECODERS = ("smollm2-135m",)


def add_parser(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, model_help: str
) -> None:
    p = sub.add_parser(
        "eval",
        parents=[common],
        help="fidelity of a real pretrained model under SpAtten",
        description="Run a real pretrained model dense in float32 and through the bit-accurate "
        "simulator with the configured schedule. Encoders (minilm-l6, or a Hugging "
        "Face BERT directory): sentence-embedding fidelity. Decoders (smollm2-135m, "
        "or a LLaMA .gguf): token-by-token generation with KV-cache pruning, "
        "perplexity and top-1 agreement. Both report attention DRAM traffic.",
    )
    p.add_argument(
        "model",
        metavar="MODEL",
        help="minilm-l6, smollm2-135m, a Hugging Face BERT directory or a LLaMA .gguf",
    )
    p.add_argument("--config", metavar="FILE", help="TOML configuration")
    p.add_argument(
        "--text-file",
        metavar="FILE",
        help="UTF-8 prose to take sentences from (default: CPython's pydoc_data)",
    )
    p.add_argument(
        "--sentences",
        type=int_in(2, MAX_SENTENCES),
        default=DEFAULT_SENTENCES,
        help=f"number of sentences (default {DEFAULT_SENTENCES})",
    )
    p.add_argument(
        "--tokens",
        type=int_in(3, MAX_TOKENS),
        default=DEFAULT_TOKENS,
        help=f"decoders: tokens of text (default {DEFAULT_TOKENS})",
    )
    p.add_argument(
        "--prompt",
        type=int_in(1, MAX_TOKENS),
        default=DEFAULT_PROMPT,
        help=f"decoders: prompt tokens run dense before decoding (default {DEFAULT_PROMPT})",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("realmodels", "spatten eval")
    from spatten_hls.compiler.realmodels import bert, text  # the realmodels extra: import late

    if args.model in DECODERS or args.model.endswith(".gguf"):
        return run_decoder(args)
    cfg = load_config(args.config)
    model = bert.load_bert(None if args.model in ENCODERS else args.model)
    if args.text_file:
        sentences = [
            s
            for s in text.split_sentences(text.read_text_file(args.text_file))
            if len(s.split()) >= 2
        ][: args.sentences]
        if len(sentences) < 2:
            raise CompilerError(f"{args.text_file}: fewer than 2 sentences")
    else:
        sentences = text.default_sentences(args.sentences)
    from spatten_hls.compiler.realmodels.evaluate import evaluate_encoder

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
            f"{result.dense_dram_bytes:,} ({result.dram_reduction:.2f}x less)\n"
        )
    return 0


def run_decoder(args: argparse.Namespace) -> int:
    from spatten_hls.compiler.realmodels import llama, text
    from spatten_hls.compiler.realmodels.evaluate import evaluate_decoder

    if args.tokens < args.prompt + 2:
        raise CompilerError(f"--tokens {args.tokens} must exceed --prompt {args.prompt} by 2+")
    cfg = load_config(args.config)
    model = llama.load_llama(None if args.model in DECODERS else args.model)
    source = text.read_text_file(args.text_file) if args.text_file else text.default_text()
    ids = model.encode(source)[: args.tokens]
    if len(ids) < args.prompt + 2:
        raise CompilerError(f"the text holds only {len(ids)} tokens; need > {args.prompt + 1}")
    r = evaluate_decoder(model, cfg, ids, args.prompt)
    if args.json:
        sys.stdout.write(dumps(r.as_dict()))
    else:
        sys.stdout.write(
            f"{r.model}: {r.prompt_tokens}-token prompt, {r.decode_steps} decode steps\n"
            f"perplexity: dense {r.ppl_dense:.3f}, SpAtten {r.ppl_spatten:.3f} "
            f"({r.ppl_spatten / r.ppl_dense - 1:+.2%})\n"
            f"top-1 agreement with dense: {r.top1_agreement:.1%}\n"
            f"rows requantized with the K LSBs: {r.requant_fraction:.1%}\n"
            f"attention DRAM: {r.dram_bytes:,} bytes vs dense 12-bit {r.dense_dram_bytes:,} "
            f"({r.dram_reduction:.2f}x less)\n"
        )
    return 0
