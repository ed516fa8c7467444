"""`spatten sweep`: every point of a space evaluated on Dask, streamed into DIR/results.jsonl,
the non-dominated ones written to DIR/pareto.csv and DIR/pareto.png.

A point's id is a stable hash of the model's shape, the base config, the point and the [eval]
options (with the text's digest): a rerun of the same sweep into DIR finds the ids it already holds
and evaluates only the rest; changing any of them makes new ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spatten_hls.compiler.config import config_from_dict
from spatten_hls.compiler.dse.cluster import dask_client
from spatten_hls.compiler.dse.pareto import front_csv, front_png, pareto_front
from spatten_hls.compiler.dse.results import ResultStore, locked
from spatten_hls.compiler.dse.space import Space
from spatten_hls.compiler.dse.worker import evaluate_point
from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.frontend import ModelSpec, load_model
from spatten_hls.compiler.frontend.builder import check_against_model
from spatten_hls.compiler.outputs import resolve_output, write_bytes_atomic

PARETO_CSV = "pareto.csv"
PARETO_PNG = "pareto.png"


@dataclass(frozen=True)
class Job:
    id: str
    point: dict[str, Any]
    config_doc: dict[str, Any]
    invalid: str | None  # the config's refusal of this combination, if it refuses it


@dataclass
class SweepOutcome:
    directory: Path
    records: list[dict[str, Any]]  # this sweep's, in the space's order
    front: list[dict[str, Any]]
    reused: int = 0
    evaluated: int = 0
    invalid: int = 0
    lost: int = 0
    seconds: float = 0.0
    written: list[Path] = field(default_factory=list)


def model_identity(model_arg: str, model: ModelSpec, space: Space) -> dict[str, Any]:
    """What the points' metrics depend on of the model: its attention shape (not its name or
    the path it was read from); with [eval], also which weights (a file's real path, or the
    preset)."""
    identity = {k: v for k, v in dataclasses.asdict(model).items() if k not in ("name", "source")}
    if space.eval is not None:
        identity["weights"] = (
            os.path.realpath(model_arg) if os.path.exists(model_arg) else model_arg
        )
    return identity


def point_id(identity: dict, space: Space, point: dict[str, Any], text: str | None) -> str:
    doc = {
        "model": identity,
        "config": space.config_document(point),
        "eval": None if space.eval is None else space.eval.as_dict() | {"text_file": None},
        "text": None if text is None else hashlib.sha256(text.encode()).hexdigest(),
    }
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def plan_jobs(model_arg: str, space: Space, text: str | None) -> list[Job]:
    """Every point with its id and config, each combination checked against the config's
    rules and the model's shape before any work is sent out."""
    model = load_model(model_arg)
    identity = model_identity(model_arg, model, space)
    jobs = []
    for point in space.points():
        doc = space.config_document(point)
        invalid = None
        try:
            check_against_model(config_from_dict(doc, source="the point"), model)
        except CompilerError as exc:
            invalid = exc.headline()
        jobs.append(Job(point_id(identity, space, point, text), point, doc, invalid))
    return jobs


def run_sweep(
    model_arg: str,
    space: Space,
    directory: Path,
    scheduler: str | None,
    workers: int,
    progress: bool,
    text: str | None,
    feature: str = "spatten sweep",
    log: Callable[[str], None] = lambda line: None,
) -> SweepOutcome:
    jobs = plan_jobs(model_arg, space, text)
    directory = resolve_output(directory, create=True)
    directory.mkdir(exist_ok=True)
    start = time.perf_counter()
    with locked(directory):
        store = ResultStore(directory)
        store.load()
        outcome = SweepOutcome(directory, [], [])
        todo = [job for job in jobs if job.id not in store.records]
        outcome.reused = len(jobs) - len(todo)
        log(
            f"{len(jobs)} points, {outcome.reused} already in {store.path}, {len(todo)} to evaluate"
        )
        with store:
            for job in todo:
                if job.invalid is not None:
                    store.append(_record(job, {"status": "error", "error": job.invalid}))
                    outcome.invalid += 1
            valid = [job for job in todo if job.invalid is None]
            if valid:
                with dask_client(scheduler, workers, feature) as client:
                    _evaluate(client, model_arg, space, valid, text, store, outcome, progress)
        order = [job.id for job in jobs]
        store.rewrite(order)
        outcome.records = [store.records[i] for i in order if i in store.records]
        outcome.front = pareto_front(outcome.records, space.objectives)
        outcome.written = _write_front(directory, space, outcome, model_arg)
    outcome.seconds = time.perf_counter() - start
    return outcome


def _evaluate(client, model_arg, space, jobs, text, store, outcome, progress) -> None:
    from distributed import as_completed
    from tqdm import tqdm

    options = None if space.eval is None else space.eval.as_dict()
    shared_text = None if text is None else client.scatter(text, broadcast=True)
    futures = {
        client.submit(
            evaluate_point,
            model_arg,
            job.config_doc,
            options,
            shared_text,
            key=f"spatten-point-{job.id}",
            pure=False,
        ): job
        for job in jobs
    }
    bar = tqdm(total=len(jobs), unit="point", disable=not progress, dynamic_ncols=True)
    try:
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except Exception:  # a lost worker or a cancelled task: not the point's own failure
                outcome.lost += 1
            else:
                store.append(_record(job, result))
                outcome.evaluated += 1
            future.release()
            bar.update(1)
    finally:
        bar.close()
        client.cancel(list(futures))


def _record(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": job.id,
        "point": job.point,
        "status": result["status"],
        "metrics": result.get("metrics", {}),
        "error": result.get("error"),
        "seconds": result.get("seconds", 0.0),
    }


def _write_front(directory: Path, space: Space, outcome: SweepOutcome, model_arg: str) -> list:
    csv_path = directory / PARETO_CSV
    write_bytes_atomic(
        csv_path, front_csv(outcome.front, space.swept_keys, space.objectives).encode("utf-8")
    )
    ok = sum(r["status"] == "ok" for r in outcome.records)
    title = (
        f"{Path(model_arg).name}: {len(outcome.front)} non-dominated of {ok} evaluated points "
        f"({Path(space.source).name})"
    )
    png_path = directory / PARETO_PNG
    png = front_png(outcome.records, outcome.front, space.objectives, title)
    write_bytes_atomic(png_path, png)
    return [directory / "results.jsonl", csv_path, png_path]
