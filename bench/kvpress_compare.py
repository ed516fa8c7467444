"""Our token-selection policies next to NVIDIA kvpress's presses, on the same tokens.

The prefill protocol of kvpress (the reference implementation of these methods for Hugging
Face models): the prompt runs dense, each layer's KV cache is compressed once (kvpress keeps
int(n * (1 - compression_ratio)) tokens per layer and KV head), then the continuation is
scored token by token against the compressed cache, with no further compression. Ours is
`spatten eval --protocol prefill`: the prompt is summarized by the bit-accurate simulator,
which makes the selection once; the decode steps read what it kept plus every new token.

In one process, on the same token ids (the simulator's tokenizer), SmolLM2-135M from its GGUF
(dequantized by transformers, offline with `gguf_file=`):

  - kvpress: StreamingLLMPress, TOVAPress, SnapKVPress, ObservedAttentionPress, float32 torch;
  - ours: the window, current and cascade policies, current per KV head (`granularity =
    "kv_head"`, each KV head selecting by its own query heads' attention, as kvpress's
    presses select per KV head), and current scored by the prompt's last query only
    (`observation_window = 1`, TOVA's score) or, per KV head, by its last 32 (SnapKV's
    observation window), 12-bit dense-design widths (per-layer scores equal current's here:
    one summarization is one invocation of every layer);

and prints perplexity and its change against each side's own dense model, the KV entries
the continuation reads, and how many layers keep exactly the set of the press they mirror
(read off its cache): our window policy StreamingLLMPress's, our last-query score
TOVAPress's.

Not in CI (torch, transformers < 5.3 and kvpress 0.5.5 are heavy): install them beside the
project, e.g. `pip install torch "transformers<5.3" kvpress==0.5.5`, then

    python bench/kvpress_compare.py [--prompt 256] [--scored 64] [--keep 0.5] [--text-file F]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.realmodels import llama, locate, text
from spatten_hls.compiler.realmodels.decode import decode_spatten
from spatten_hls.compiler.realmodels.evaluate import dense_decoding

SINKS = 4


def hf_model():
    import torch
    from transformers import AutoModelForCausalLM

    gguf = locate.smollm2_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        torch_dtype=torch.float32,
        attn_implementation="eager",
    )
    return model.eval()


def hf_score(model, ids: np.ndarray, prompt: int, press) -> tuple[np.ndarray, list]:
    """NLL of ids[prompt+1:] after a prefill of ids[:prompt] under `press` (None: dense),
    and each layer's cached keys after the prefill."""
    import torch
    from transformers import DynamicCache

    cache = DynamicCache()
    head = torch.tensor(ids[None, :prompt])
    tail = torch.tensor(ids[None, prompt:-1])
    # the continuation keeps its positions (RoPE) whatever the cache holds, as kvpress's
    # pipeline passes them
    positions = torch.arange(prompt, len(ids) - 1)[None, :]
    with torch.no_grad():
        if press is None:
            model(input_ids=head, past_key_values=cache)
        else:
            with press(model):
                model(input_ids=head, past_key_values=cache)
        keys = [layer.keys.clone() for layer in cache.layers]
        out = model(input_ids=tail, past_key_values=cache, position_ids=positions)
        logits = out.logits[0].double().numpy()
    return llama.token_nll(logits, ids[prompt + 1 :]), keys


def kept_positions(compressed, dense) -> list[list[int]]:
    """Per layer, the prompt positions whose keys the compressed cache holds (KV head 0)."""
    out = []
    for small, full in zip(compressed, dense, strict=True):
        rows = full[0, 0].numpy()
        hits = [int(np.flatnonzero((rows == row).all(axis=1))[0]) for row in small[0, 0].numpy()]
        out.append(sorted(hits))
    return out


OURS = {  # name: the [token_pruning] table besides enabled, schedule and keep
    "window": {"policy": "window", "keep_first": SINKS},
    "current": {"policy": "current", "keep_first": SINKS},
    "current per KV head": {"policy": "current", "keep_first": SINKS, "granularity": "kv_head"},
    "current, last query (TOVA's score)": {"policy": "current", "observation_window": 1},
    "current per KV head, last 32 queries": {
        "policy": "current",
        "keep_first": SINKS,
        "granularity": "kv_head",
        "observation_window": 32,
    },
    "cascade": {"policy": "cascade", "keep_first": SINKS},
}


def our_runs(model, ids: np.ndarray, prompt: int, keep: float, dense_ppl: float) -> dict:
    """Each policy under the prefill protocol, its table row printed as it finishes."""
    runs = {}
    for name, section in OURS.items():
        tokens = {"enabled": True, "schedule": "uniform", "keep": keep, **section}
        run = decode_spatten(
            model, ids, prompt, config_from_dict({"token_pruning": tokens}), "prefill"
        )
        ppl = math.exp(run.nll.mean())
        print(
            f"| spatten-hls {name} | {ppl:.4f} | {ppl / dense_ppl - 1:+.2%} | "
            f"{run.result.kv_read_fraction:.3f} |",
            flush=True,
        )
        runs[name] = run
    return runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prompt", type=int, default=256)
    p.add_argument("--scored", type=int, default=64)
    p.add_argument("--keep", type=float, default=0.5)
    p.add_argument("--text-file")
    args = p.parse_args()
    from kvpress import ObservedAttentionPress, SnapKVPress, StreamingLLMPress, TOVAPress
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()

    ours = llama.load_llama()
    source = text.read_text_file(args.text_file) if args.text_file else text.default_text()
    ids = np.asarray(ours.encode(source)[: args.prompt + args.scored + 1], dtype=np.int64)
    prompt, ratio = args.prompt, 1.0 - args.keep
    model = hf_model()
    hf_dense, dense_keys = hf_score(model, ids, prompt, None)
    ppl_hf = math.exp(hf_dense.mean())
    ours_dense = dense_decoding(ours, ids, prompt)
    ppl_ours = math.exp(ours_dense.nll.mean())
    n_kept = int(prompt * (1 - ratio))
    reads = sum(n_kept + t + 1 for t in range(args.scored)) / sum(
        prompt + t + 1 for t in range(args.scored)
    )
    print(f"SmolLM2-135M, {prompt}-token prompt, {args.scored} scored tokens, keep {args.keep}")
    print(f"dense perplexity: transformers {ppl_hf:.4f}, ours (numpy float32) {ppl_ours:.4f}")
    print("| method | perplexity | change vs own dense | KV entries read |")
    print("|---|---|---|---|")
    presses = {
        "kvpress StreamingLLMPress": StreamingLLMPress(compression_ratio=ratio, n_sink=SINKS),
        "kvpress TOVAPress": TOVAPress(compression_ratio=ratio),
        "kvpress SnapKVPress": SnapKVPress(compression_ratio=ratio),
        "kvpress ObservedAttentionPress": ObservedAttentionPress(compression_ratio=ratio),
    }
    sets, ppls = {}, {}
    for name, press in presses.items():
        nll, keys = hf_score(model, ids, prompt, press)
        ppls[name] = math.exp(nll.mean())
        sets[name] = kept_positions(keys, dense_keys)
        print(f"| {name} | {ppls[name]:.4f} | {ppls[name] / ppl_hf - 1:+.2%} | {reads:.3f} |")
    runs = our_runs(ours, ids, prompt, args.keep, ppl_ours)
    for policy, press in (
        ("window", "kvpress StreamingLLMPress"),
        ("current, last query (TOVA's score)", "kvpress TOVAPress"),
    ):
        layers = runs[policy].result.layers
        kept = [[t for t in r.kept_tokens if t < prompt] for r in layers]
        same = sum(a == b for a, b in zip(kept, sets[press], strict=True))
        shared = sum(len(set(a) & set(b)) for a, b in zip(kept, sets[press], strict=True))
        ppl = math.exp(runs[policy].nll.mean())
        print(
            f"{policy}: {press}'s set in {same} of {len(layers)} layers "
            f"({shared / sum(map(len, sets[press])):.1%} of its entries), perplexity ratio "
            f"{ppl / ppls[press]:.4f}"
        )
    print(f"dense ours / dense transformers: {ppl_ours / ppl_hf:.4f}")


if __name__ == "__main__":
    main()
