"""What a Dask worker runs for one point of a sweep: compile, simulate, report; then, with an
[eval] table, the real model's fidelity.

A task carries only the model's name, the point's config document and the eval options; the
text arrives once per worker (scattered by the sweep) and the model loads once per worker
process (the loaders cache it), as does the dense baseline of a decoder, so the per-point cost
is the point's own work. Every failure of the point itself comes back as a result with
`status = "error"`: only a lost worker or a cancelled task raises on the client.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from functools import cache, lru_cache
from typing import Any

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.driver import compile_spec
from spatten_hls.compiler.dse.metrics import fidelity_metrics, perf_metrics
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.frontend import ModelSpec, load_model
from spatten_hls.compiler.frontend.builder import check_against_model
from spatten_hls.compiler.perf import performance_report
from spatten_hls.compiler.sim import simulate

SEED = 0  # the random inputs of the performance model, as `spatten report` without --seed


def evaluate_point(
    model_arg: str, config_doc: dict, eval_options: dict | None, text: str | None
) -> dict[str, Any]:
    """`{"status": "ok", "metrics": {...}}` or `{"status": "error", "error": "..."}`, with the
    point's wall time in `seconds`."""
    start = time.perf_counter()
    try:
        metrics = _metrics(model_arg, config_doc, eval_options, text)
        result: dict[str, Any] = {"status": "ok", "metrics": metrics}
    except CompilerError as exc:
        result = {"status": "error", "error": exc.headline()}
    except MemoryError:
        result = {"status": "error", "error": "out of memory"}
    except Exception as exc:  # a bug: recorded with where it happened, the sweep goes on
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = {
            "status": "error",
            "error": f"internal error ({type(exc).__name__}: {str(exc)[:200]}) at "
            f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}",
        }
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def _metrics(
    model_arg: str, config_doc: dict, eval_options: dict | None, text: str | None
) -> dict[str, Any]:
    cfg = config_from_dict(config_doc, source="the point's config")
    spec = _model_spec(model_arg)
    check_against_model(cfg, spec)
    graph = compile_spec(spec, cfg).graph
    result = simulate(graph, seed=SEED, reference=False, progress=False)
    metrics = perf_metrics(performance_report(result, graph.lowered_plan()).as_dict())
    if eval_options is not None:
        metrics |= fidelity_metrics(_fidelity(model_arg, cfg, eval_options, text))
    return metrics


@cache
def _model_spec(model_arg: str) -> ModelSpec:
    return load_model(model_arg)


def _fidelity(model_arg: str, cfg, options: dict, text: str | None) -> dict[str, Any]:
    from spatten_hls.compiler.realmodels import evaluate, models
    from spatten_hls.compiler.realmodels import text as texts

    model = models.load_real_model(model_arg)
    name = options["text_file"] or "the default text"
    if not models.is_decoder(model_arg):
        sentences = texts.eval_sentences(text, options["sentences"], name, "'eval.sentences' =")
        return evaluate.evaluate_encoder(model, cfg, sentences).as_dict()
    ids, dense = _dense_decoding(
        model_arg, _digest(text), options["tokens"], options["prompt"], options["text_file"]
    )
    fidelity = evaluate.evaluate_decoder(
        model, cfg, ids, options["prompt"], options["protocol"], dense, progress=False
    )
    return fidelity.as_dict()


_TEXTS: dict[str, str | None] = {}  # digest -> text, for the cached baseline below


def _digest(text: str | None) -> str:
    key = "" if text is None else hashlib.sha256(text.encode()).hexdigest()
    _TEXTS[key] = text
    return key


@lru_cache(maxsize=4)
def _dense_decoding(model_arg: str, text_key: str, tokens: int, prompt: int, name: str | None):
    """The evaluated ids and the dense model's run on them: once per worker and text (`name`,
    its file, in messages)."""
    from spatten_hls.compiler.realmodels import evaluate, models

    model = models.load_real_model(model_arg)
    ids = evaluate.decoder_ids(model, _TEXTS[text_key], tokens, prompt, name, "'eval.tokens' =")
    return ids, evaluate.dense_decoding(model, ids, prompt)
