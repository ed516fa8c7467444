"""The Pareto front on hand-checked cases, and its CSV."""

from __future__ import annotations

from spatten_hls.compiler.dse.pareto import front_csv, front_png, pareto_front


def rec(ident, status="ok", fits=True, **metrics):
    return {
        "id": ident,
        "point": {"k": ident},
        "status": status,
        "metrics": {"fits": fits, **metrics},
    }


def test_front_of_two_minimized_objectives_by_hand():
    records = [
        rec("a", latency_cycles=10, dram_bytes=50),
        rec("b", latency_cycles=20, dram_bytes=20),
        rec("c", latency_cycles=20, dram_bytes=30),  # dominated by b
        rec("d", latency_cycles=30, dram_bytes=10),
        rec("e", latency_cycles=35, dram_bytes=10),  # dominated by d (equal bytes, slower)
        rec("f", latency_cycles=5, dram_bytes=60),
        rec("g", latency_cycles=20, dram_bytes=20),  # ties b: neither dominates the other
        rec("h", status="error"),
        rec("i", fits=False, latency_cycles=1, dram_bytes=1),  # does not fit: on no front
    ]
    front = pareto_front(records, ["latency_cycles", "dram_bytes"])
    assert [r["id"] for r in front] == ["f", "a", "b", "g", "d"]


def test_a_higher_is_better_metric_is_maximized():
    records = [
        rec("a", latency_cycles=10, mean_cosine=0.99),
        rec("b", latency_cycles=10, mean_cosine=0.95),  # same latency, worse cosine
        rec("c", latency_cycles=5, mean_cosine=0.90),
        rec("d", latency_cycles=6, mean_cosine=0.89),  # slower and worse than c
    ]
    front = pareto_front(records, ["latency_cycles", "mean_cosine"])
    assert [r["id"] for r in front] == ["c", "a"]


def test_front_matches_brute_force_on_random_points():
    import random

    rng = random.Random(3)
    records = [
        rec(
            str(i),
            latency_cycles=rng.randint(0, 30),
            dram_bytes=rng.randint(0, 30),
            dsp=rng.randint(0, 5),
        )
        for i in range(300)
    ]
    objectives = ["latency_cycles", "dram_bytes", "dsp"]

    def vec(r):
        return [r["metrics"][m] for m in objectives]

    def dominated(r):
        return any(
            all(x <= y for x, y in zip(vec(o), vec(r), strict=True)) and vec(o) != vec(r)
            for o in records
        )

    expected = {r["id"] for r in records if not dominated(r)}
    assert {r["id"] for r in pareto_front(records, objectives)} == expected
    assert 3 < len(expected) < 300


def test_csv_holds_id_keys_objectives_and_fits():
    front = [rec("a", latency_cycles=10.5, dram_bytes=50)]
    text = front_csv(front, ["k"], ["latency_cycles", "dram_bytes"])
    assert text == "id,k,latency_cycles,dram_bytes,fits\na,a,10.5,50,True\n"


def test_png_is_a_png_and_deterministic():
    records = [
        rec("a", latency_cycles=10, dram_bytes=50),
        rec("b", latency_cycles=5, dram_bytes=60),
    ]
    front = pareto_front(records, ["latency_cycles", "dram_bytes"])
    one = front_png(records, front, ["latency_cycles", "dram_bytes"], "t")
    assert one.startswith(b"\x89PNG") and one == front_png(
        records, front, ["latency_cycles", "dram_bytes"], "t"
    )
    single = front_png(records, front[:1], ["latency_cycles"], "t")
    assert single.startswith(b"\x89PNG")
