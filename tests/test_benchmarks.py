"""The benchmark machinery: ``pyconv bench`` runs, checks before timing, saves, compares."""
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from pyconv.benchmarks import l1
from pyconv.benchmarks.report import compare_table, results_table
from pyconv.benchmarks.runner import run_case
from pyconv.benchmarks.table import OPS, select
from pyconv.benchmarks.timing import ROUNDS, repeats_for

TINY_L1 = next(c for c in l1.CASES if c.tiny)


def _bench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pyconv", "bench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_quick_run_prints_saves_and_compares(tmp_path):
    # run outside the checkout, so that the installed package is imported
    done = _bench("--quick", "--case", "tiny", "--budget", "0", "--threads", "1", "--json", "run.json",
                  cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "peers:" in done.stdout
    for name in OPS:  # every family's tiny case ran
        assert f"{name} · float32" in done.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # nothing else written
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["machine"]["cpu"] and run["machine"]["pyconv"]["OpenMP"]
    ours = [c for rec in run["results"] for c in rec["contenders"] if c["role"] == "pyconv"]
    assert ours and all(c["status"] == "ok" and c["median"] > 0 for c in ours)
    done = _bench("--compare", "run.json", "run.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "old/new" in done.stdout and "1.00" in done.stdout


def test_compare_refuses_a_file_that_is_not_a_run(tmp_path):
    (tmp_path / "other.json").write_text("{}")
    done = _bench("--compare", "other.json", "other.json", cwd=tmp_path)
    assert done.returncode == 2 and "not a file written by pyconv bench" in done.stderr


def test_a_mismatch_is_reported_and_not_timed():
    wrong = replace(l1.CONTENDERS[0], bind=lambda case, inp, threads: lambda: np.zeros(
        (inp["X"].shape[0], inp["Y"].shape[0]), inp["X"].dtype))
    op = replace(OPS["l1_distances"], contenders=(wrong,) + l1.CONTENDERS[1:2])
    rec = run_case(op, TINY_L1, "float64", threads=1, budget=0.01)
    ours = rec["contenders"][1]
    assert ours["status"] == "mismatch" and "times" not in ours and "tolerance" in ours["detail"]
    assert rec["contenders"][0]["status"] == "ok"  # the oracle itself is timed
    assert "mismatch" in results_table([rec])


def test_contenders_are_timed_in_turns():
    """Each contender's timed calls come in ROUNDS blocks, one per turn over the
    contenders, so that a spell of load is shared out among them."""
    log = []

    def logging(contender):
        def bind(case, inputs, threads):
            call = contender.bind(case, inputs, threads)
            return lambda: (log.append(contender.label), call())[1]
        return replace(contender, bind=bind)

    op = replace(OPS["l1_distances"], contenders=tuple(map(logging, l1.CONTENDERS[:2])))
    rec = run_case(op, TINY_L1, "float64", threads=1, budget=0.01)
    blocks = [label for i, label in enumerate(log) if i == 0 or log[i - 1] != label]
    labels = [c["label"] for c in rec["contenders"]]
    assert blocks == labels * (ROUNDS + 1)  # the checked calls, then ROUNDS turns
    assert all(len(c["times"]) >= ROUNDS for c in rec["contenders"])


def test_compare_leaves_out_runs_of_other_shapes():
    rec = run_case(replace(OPS["l1_distances"], contenders=l1.CONTENDERS[:2]), TINY_L1,
                   "float64", threads=1, budget=0.01)
    other = dict(rec, params=dict(rec["params"], n_x=1))
    old, new, moved = ({"command": "pyconv bench", "machine": {"date": "today"}, "results": [r]}
                       for r in (rec, rec, other))
    assert "old/new" in compare_table(old, new)
    assert "shapes differ" in compare_table(old, moved)


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from pyconv.benchmarks.plot import plot

    rec = run_case(replace(OPS["l1_distances"], contenders=l1.CONTENDERS[:2]), TINY_L1,
                   "float32", threads=1, budget=0.01)
    plot([rec], tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("family", ["conv", "pool", "l1"])
def test_only_keeps_one_family(family):
    selected, left_out = select(only=family)
    assert all(op.family == family for op, _ in selected)
    assert all(op.family == family for op in OPS.values() if op.name in " ".join(left_out))


def test_quick_scales_every_case_down():
    f32 = np.dtype(np.float32)
    full = {(op.name, case.name): op.work(case.params, f32) for op, case in select()[0]}
    for op, case in select(quick=True)[0]:
        if case.tiny:
            assert op.work(case.params, f32) == full[op.name, case.name]
        else:
            assert op.work(case.params, f32) < full[op.name, case.name] / 4


@pytest.mark.parametrize("first, budget, expected", [(0.001, 0.1, 100), (0.01, 0.1, 10),
                                                     (0.5, 0.1, 3), (2.0, 1.0, 0)])
def test_repeats_fill_the_budget_within_bounds(first, budget, expected):
    assert repeats_for(first, budget) == expected
