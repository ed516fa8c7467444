"""`spatten eval`: what SpAtten's pruning and quantization cost a real pretrained model, for
one configuration or several side by side (`--compare`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from spatten_hls.compiler.cli.argtypes import int_in
from spatten_hls.compiler.config import load_config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.jsonfmt import dumps
from spatten_hls.compiler.optional import require
from spatten_hls.compiler.outputs import output_file, write_bytes_atomic

DEFAULT_SENTENCES = 64
MAX_SENTENCES = 100_000
MAX_TOKENS = 1 << 15
DEFAULT_TOKENS = 256
DEFAULT_PROMPT = 32


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
    configs = p.add_mutually_exclusive_group()
    configs.add_argument("--config", metavar="FILE", help="TOML configuration")
    configs.add_argument(
        "--compare",
        metavar="FILE",
        nargs="+",
        help="evaluate several TOML configurations on the same text, one table",
    )
    p.add_argument(
        "--plot",
        type=Path,
        metavar="FILE.png",
        help="also write fidelity against kv_read_fraction, a point per config (matplotlib)",
    )
    p.add_argument(
        "--protocol",
        choices=("decode", "prefill"),
        default="decode",
        help="decoders: select tokens at every decode step (decode, the default), or once "
        "while the prompt is summarized and then decode with no further selection (prefill)",
    )
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
        help=f"decoders: prompt tokens, dense before decoding, or the summarization under "
        f"--protocol prefill (default {DEFAULT_PROMPT})",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    require("realmodels", "spatten eval")
    if args.plot is not None:  # a missing matplotlib or a bad path fails before the models run
        if args.plot.suffix.lower() != ".png":
            raise CompilerError(f"--plot {args.plot}: the plot is a PNG; name the file .png")
        require("plot", "--plot")
        output_file(args.plot)
    config_files = args.compare or [args.config]
    configs = [load_config(path) for path in config_files]
    names = [path or "<defaults>" for path in config_files]
    from spatten_hls.compiler.realmodels.models import is_decoder

    if is_decoder(args.model):
        results = run_decoder(args, configs)
    else:
        if args.protocol != "decode":
            raise CompilerError(
                "--protocol prefill applies to decoders (an encoder has no KV cache)"
            )
        results = run_encoder(args, configs)
    if args.json:
        docs = [{"config": name, **r.as_dict()} for name, r in zip(names, results, strict=True)]
        sys.stdout.write(dumps({"results": docs} if args.compare else docs[0]))
    elif args.compare:
        from spatten_hls.compiler.realmodels.compare import table

        sys.stdout.write(_heading(results[0]) + table(names, results))
    else:
        sys.stdout.write(_summary(results[0]))
    if args.plot is not None:
        from spatten_hls.compiler.realmodels.compare import figure_png

        png = figure_png(names, results, _heading(results[0]).strip())
        write_bytes_atomic(
            args.plot, png, then=lambda: print(f"wrote {args.plot}", file=sys.stderr)
        )
    return 0


def run_encoder(args: argparse.Namespace, configs: list) -> list:
    from spatten_hls.compiler.realmodels import text  # the realmodels extra: import late
    from spatten_hls.compiler.realmodels.evaluate import evaluate_encoder
    from spatten_hls.compiler.realmodels.models import load_real_model

    model = load_real_model(args.model)
    check_configs(configs, model.spec)
    source = text.read_text_file(args.text_file) if args.text_file else None
    sentences = text.eval_sentences(source, args.sentences, args.text_file)
    return [evaluate_encoder(model, cfg, sentences) for cfg in configs]


def run_decoder(args: argparse.Namespace, configs: list) -> list:
    from spatten_hls.compiler.realmodels import text
    from spatten_hls.compiler.realmodels.evaluate import (
        decoder_ids,
        dense_decoding,
        evaluate_decoder,
    )
    from spatten_hls.compiler.realmodels.models import load_real_model

    if args.tokens < args.prompt + 2:  # before the model loads
        raise CompilerError(f"--tokens {args.tokens} must exceed --prompt {args.prompt} by 2+")
    model = load_real_model(args.model)
    check_configs(configs, model.spec)
    source = text.read_text_file(args.text_file) if args.text_file else None
    ids = decoder_ids(model, source, args.tokens, args.prompt, args.text_file)
    dense = dense_decoding(model, ids, args.prompt)
    return [  # progress None: a bar over the decode steps when stderr is a terminal
        evaluate_decoder(model, cfg, ids, args.prompt, args.protocol, dense, progress=None)
        for cfg in configs
    ]


def check_configs(configs: list, spec) -> None:
    """Each configuration as `compile` and `report` check it against the model, so a file is
    valid or not for every command alike (the evaluation itself takes its lengths from the
    text, not from `[model] seq_len`, `gen_tokens` or `stage`)."""
    from spatten_hls.compiler.frontend.builder import check_against_model

    for cfg in configs:
        check_against_model(cfg, spec)


def _heading(r) -> str:
    from spatten_hls.compiler.realmodels.evaluate import DecoderFidelity

    if isinstance(r, DecoderFidelity):
        return (
            f"{r.model}: {r.prompt_tokens}-token prompt, {r.decode_steps} decode steps "
            f"({r.protocol} protocol), dense perplexity {r.ppl_dense:.3f}\n"
        )
    return f"{r.model}: {r.sentences} sentences, {r.tokens} tokens\n"


def _summary(r) -> str:
    from spatten_hls.compiler.realmodels.evaluate import DecoderFidelity

    if isinstance(r, DecoderFidelity):
        return (
            f"{r.model}: {r.prompt_tokens}-token prompt, {r.decode_steps} decode steps "
            f"({r.protocol} protocol)\n"
            f"perplexity: dense {r.ppl_dense:.3f}, SpAtten {r.ppl_spatten:.3f} "
            f"({r.ppl_spatten / r.ppl_dense - 1:+.2%})\n"
            f"top-1 agreement with dense: {r.top1_agreement:.1%}\n"
            f"KV entries read: {r.kv_read_fraction:.1%} of dense decoding\n"
            f"rows requantized with the K LSBs: {r.requant_fraction:.1%}\n"
            f"attention DRAM: {r.dram_bytes:,} bytes vs dense 12-bit {r.dense_dram_bytes:,} "
            f"({r.dram_reduction:.2f}x less)\n"
        )
    return (
        f"{r.model}: {r.sentences} sentences, {r.tokens} tokens\n"
        f"mean tokens entering each layer: {r.tokens_per_layer}\n"
        f"embedding cosine vs dense fp32: mean {r.mean_cosine:.5f}, min {r.min_cosine:.5f} "
        f"(pruned tokens {r.pooling_pruned} the pool; mean cosine if they "
        + ", ".join(f"{w}: {c:.5f}" for w, c in r.mean_cosine_by_pooling.items())
        + ")\n"
        f"nearest-neighbour agreement: {r.nn_agreement:.1%}\n"
        f"attention key entries read: {r.kv_read_fraction:.1%} of dense\n"
        f"attention DRAM: {r.dram_bytes:,} bytes vs dense 12-bit "
        f"{r.dense_dram_bytes:,} ({r.dram_reduction:.2f}x less)\n"
    )
