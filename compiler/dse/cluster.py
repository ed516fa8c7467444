"""The Dask cluster a sweep runs on: an in-process `LocalCluster` of worker processes by
default, or a running cluster's scheduler (`--scheduler tcp://HOST:PORT`).

Workers of a running cluster must have spatten-hls (and, for [eval], the realmodels extra and
the model files) installed: a task names the function and the model, it does not carry them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from spatten_hls.compiler.errors import CompilerError
from spatten_hls.compiler.optional import require

CONNECT_TIMEOUT_S = 20


@contextlib.contextmanager
def dask_client(scheduler: str | None, workers: int, feature: str) -> Iterator:
    """A `distributed.Client`, closed (and a local cluster shut down) on leaving."""
    require("sweep", feature)
    from distributed import Client, LocalCluster

    for name in ("distributed", "tornado", "bokeh"):  # their INFO lines are not ours to print
        logging.getLogger(name).setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            cluster = stack.enter_context(
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,  # the simulator's kernels hold the GIL
                    processes=True,
                    host="127.0.0.1",  # a local cluster listens on loopback only
                    dashboard_address="127.0.0.1:0",  # its HTTP server on a free port
                    silence_logs=logging.ERROR,
                )
            )
            client = stack.enter_context(Client(cluster))
        else:
            try:
                client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT_S))
            except (OSError, TimeoutError, ValueError) as exc:
                raise CompilerError(
                    f"--scheduler {scheduler}: cannot connect ({type(exc).__name__}: "
                    f"{str(exc)[:160]})"
                ) from None
        yield client
