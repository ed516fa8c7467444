"""SmolLM2-135M under a KV-eviction config, in float32 and independent of the simulator.

A plain numpy implementation of the decode-time `per-layer` (H2O-style: attention received
summed over the query heads and the steps, `decay_shift` as a float decay) and `current`
(TOVA-style: this step's attention) policies at layer granularity, with the config's budget
(`keep` of the context so far after every step, `keep_first` sinks and the `keep_recent`
newest tokens protected inside it). The prompt runs dense and scores nothing, as in
`spatten eval --protocol decode`. Printed next to the simulator's 12-bit run of the same
config on the same tokens, it tells what the policy costs from what the design's
arithmetic adds, also past the lengths the configs were chosen at:

    python examples/float_kv_eviction.py --config examples/configs/smollm2-kv50.toml \\
        --tokens 2048 [--text-file F] [--no-simulator]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from spatten_hls.compiler.config import TokenPruningSection, load_config
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.ir.types import as_ratio
from spatten_hls.compiler.realmodels import llama, text
from spatten_hls.compiler.realmodels.attention import AttentionCall
from spatten_hls.compiler.realmodels.evaluate import decoder_ids, dense_decoding, evaluate_decoder


class FloatEviction:
    """An attention hook that runs every position from `prompt` on as a decode step: it reads
    the layer's cached keys, adds its attention to the layer's scores and evicts down to the
    budget. `reads` and `dense_reads` count KV entries as `kv_read_fraction` does."""

    def __init__(self, policy: TokenPruningSection, prompt: int) -> None:
        if (
            not policy.enabled
            or policy.policy not in ("per-layer", "current")
            or policy.schedule != "uniform"
            or policy.keep_per_layer is not None
            or policy.granularity != "layer"
        ):
            raise ValueError(
                "modelled: an enabled per-layer or current policy, uniform schedule, one "
                "keep for every layer, layer granularity"
            )
        self.policy, self.prompt = policy, prompt
        self.ratio = as_ratio(policy.keep)
        self.kept: dict[int, list[int]] = {}  # per layer, the cache after the last step
        self.reads = self.dense_reads = 0

    def keep(self, end: int) -> int:  # the design's kept(end): floor, at least one token
        return max(1, end * self.ratio.numerator // self.ratio.denominator)

    def __call__(self, call: AttentionCall) -> np.ndarray:
        q, k, v = call.q, call.k, call.v
        heads, n, d = q.shape
        group = heads // k.shape[0]
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        out = np.empty_like(q)
        p = self.prompt
        scores = np.einsum("hid,hjd->hij", q[:, :p], k[:, :p]) / np.sqrt(d)
        scores[:, np.triu(np.ones((p, p), dtype=bool), 1)] = -np.inf  # causal
        out[:, :p] = softmax(scores) @ v[:, :p]  # the prompt, dense
        rule = self.policy
        decay = 1.0 - 2.0**-rule.decay_shift if rule.decay_shift else 1.0
        score = np.zeros(n)
        alive = np.zeros(n, dtype=bool)
        alive[:p] = True
        for t in range(p, n - 1):  # position n - 1 predicts nothing that is scored
            alive[t] = True
            keys = np.flatnonzero(alive)
            probs = softmax(np.einsum("hd,hjd->hj", q[:, t], k[:, keys]) / np.sqrt(d))
            out[:, t] = np.einsum("hj,hjd->hd", probs, v[:, keys])
            self.reads += len(keys)
            self.dense_reads += t + 1
            fresh = probs.sum(axis=0)
            score[keys] = fresh if rule.policy == "current" else score[keys] * decay + fresh
            end = t + 1
            protected = (keys < rule.keep_first) | (keys >= end - rule.keep_recent) | (keys == t)
            free = max(self.keep(end) - int(protected.sum()), 0)
            others = keys[~protected]
            if free < len(others):
                order = others[np.argsort(-score[others], kind="stable")]
                alive[order[free:]] = False
        out[:, n - 1] = 0.0
        self.kept[call.layer] = np.flatnonzero(alive[: n - 1]).tolist()
        return out


def softmax(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def float_run(model, ids: np.ndarray, prompt: int, policy: TokenPruningSection):
    """(perplexity, kv_read_fraction, the hook) of the float32 eviction on `ids`."""
    hook = FloatEviction(policy, prompt)
    logits = llama.forward(model, ids, hook)[prompt:-1]
    nll = llama.token_nll(logits, np.asarray(ids[prompt + 1 :]))
    return float(np.exp(nll.mean())), hook.reads / hook.dense_reads, hook


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="examples/configs/smollm2-kv50.toml")
    parser.add_argument("--tokens", type=int, default=288)
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--text-file", default=None)
    parser.add_argument("--no-simulator", action="store_true")
    args = parser.parse_args()
    try:
        cfg = load_config(args.config)
        FloatEviction(cfg.token_pruning, args.prompt)  # refuses what it does not model
        model = llama.load_llama()
        source = text.read_text_file(args.text_file) if args.text_file else None
        ids = decoder_ids(model, source, args.tokens, args.prompt, args.text_file)
    except (CompilerError, ValueError) as e:
        sys.exit(f"error: {args.config}: {e}" if isinstance(e, ValueError) else f"error: {e}")
    dense = dense_decoding(model, ids, args.prompt)
    ppl_dense = float(np.exp(dense.nll.mean()))
    print(f"SmolLM2-135M, {args.config}, {len(ids)} tokens, prompt {args.prompt}\n")
    print("| run | perplexity | change vs dense float32 | kv_read_fraction | seconds |")
    print("|---|---|---|---|---|")
    print(f"| dense float32 | {ppl_dense:.4f} | | 1.000 | |")

    def row(name: str, ppl: float, reads: float, start: float) -> None:
        seconds = time.perf_counter() - start
        print(f"| {name} | {ppl:.4f} | {ppl / ppl_dense - 1:+.2%} | {reads:.3f} | {seconds:.0f} |")

    start = time.perf_counter()
    ppl, reads, _ = float_run(model, ids, args.prompt, cfg.token_pruning)
    row("float32 eviction", ppl, reads, start)
    if not args.no_simulator:
        start = time.perf_counter()
        sim = evaluate_decoder(model, cfg, ids, args.prompt, dense=dense, progress=None)
        row("simulator, 12-bit", sim.ppl_spatten, sim.kv_read_fraction, start)


if __name__ == "__main__":
    main()
