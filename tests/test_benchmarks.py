"""The benchmark machinery: ``pyconv bench`` runs, checks before timing, saves, compares."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pyconv.benchmarks import baselines, conv, l1
from pyconv.benchmarks.report import compare_table, load_run, results_table
from pyconv.benchmarks.runner import run_case
from pyconv.benchmarks.spec import Case
from pyconv.benchmarks.table import OPS, select
from pyconv.benchmarks.timing import ROUNDS, repeats_for

TINY_L1 = next(c for c in l1.CASES if c.tiny)
OLD_RUN = Path(__file__).parent.parent / "docs" / "bench.json"


def _bench(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pyconv", "bench", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=120)


def test_quick_run_prints_saves_and_compares(tmp_path):
    # run outside the checkout, so that the installed package is imported
    done = _bench("--quick", "--case", "tiny", "--budget", "0", "--threads", "1", "--json",
                  "run.json", "--matmul-size", "64", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "peers:" in done.stdout
    for name in OPS:  # every family's tiny case ran
        assert f"{name} · float32" in done.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # nothing else written
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["machine"]["cpu"] and run["machine"]["pyconv"]["OpenMP"]
    ours = [c for rec in run["results"] for c in rec["contenders"] if c["role"] == "pyconv"]
    assert ours and all(c["status"] == "ok" and c["median"] > 0 for c in ours)
    # the matmul of the % GEMM column: printed once, saved with the run
    assert run["matmul"]["float32"]["n"] == 64 and run["matmul"]["float32"]["throughput"] > 0
    assert done.stdout.count("matmul (NumPy 64×64 a @ b, 1 thread), GFLOP/s: float32") == 1
    assert "% GEMM" in done.stdout and "% copy" in done.stdout
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


def _tiny(op_name):
    return next(c for c in OPS[op_name].cases if c.tiny)


def _pyconv_entries(rec):
    # a method that does not compute the case (winograd on a depthwise layer) is skipped
    ours = [c for c in rec["contenders"] if c["role"] == "pyconv" and c["status"] != "skipped"]
    assert ours and all(c["status"] == "ok" for c in ours)
    return ours


def test_matmul_times_the_product_it_names():
    m = baselines.matmul("float64", 0.0, n=32)
    assert m["n"] == 32 and "32×32" in m["call"] and len(m["times"]) >= ROUNDS
    assert m["throughput"] == pytest.approx(2 * 32 ** 3 / m["median"] / 1e9)


def test_gemm_share_is_the_kernel_speed_over_the_matmul_speed():
    gemm = dict(call="NumPy 64×64 a @ b, float32", throughput=2.5)
    for name in ("conv2d", "conv2d_backward"):
        rec = run_case(OPS[name], _tiny(name), "float32", threads=1, budget=0.0, gemm=gemm)
        assert rec["baselines"]["gemm"] == gemm
        for c in _pyconv_entries(rec):
            assert c["share"]["gemm"] == pytest.approx(c["throughput"] / 2.5)
        assert all("share" not in c for c in rec["contenders"] if c["role"] != "pyconv")
        table = results_table([rec])
        assert "% GEMM" in table and "(2.5 GFLOP/s in this run)" in table
        assert "% copy" not in table  # not a depthwise layer
        cells = table.splitlines()[4].split()  # the first pyconv row
        share = 100 * _pyconv_entries(rec)[0]["share"]["gemm"]
        assert (f"{share:.0f}" if share >= 10 else f"{share:.2g}") in cells


def test_no_gemm_share_without_a_matmul_or_for_other_units():
    rec = run_case(OPS["conv2d"], _tiny("conv2d"), "float32", threads=1, budget=0.0)
    assert rec["baselines"] == {} and "% GEMM" not in results_table([rec])
    # pyconv and the oracle only: faiss would load a BLAS of its own into this process
    rec = run_case(replace(OPS["l1_distances"], contenders=l1.CONTENDERS[:2]), TINY_L1,
                   "float32", threads=1, budget=0.0, gemm=dict(call="x", throughput=1.0))
    assert rec["baselines"] == {}


@pytest.mark.parametrize("op_name, read_plus_written", [
    # 2×3×13×13 input, 3×3 windows, stride 2, padding 1: 2×3×7×7 output
    ("max_pool2d", (1014 + 294) * 4),
    ("avg_pool2d", (1014 + 294) * 4),
    ("avg_pool2d_backward", (294 + 1014) * 4),
    ("max_pool2d_backward", (294 + 1014) * 4 + 294 * 8),  # and the int64 indices
])
@pytest.mark.parametrize("threads", [1, 2])
def test_copy_share_of_pools_counts_bytes_read_and_written(op_name, read_plus_written, threads):
    rec = run_case(OPS[op_name], _tiny(op_name), "float32", threads=threads, budget=0.0)
    copy = rec["baselines"]["copy"]
    assert copy["bytes"] == read_plus_written and len(copy["times"]) >= ROUNDS
    assert copy["throughput"] == pytest.approx(read_plus_written / copy["median"] / 1e9)
    for c in _pyconv_entries(rec):
        rate = read_plus_written / c["median"] / 1e9
        assert c["share"]["copy"] == pytest.approx(rate / copy["throughput"])
    table = results_table([rec])
    assert "% copy" in table and "np.copyto" in table


def test_depthwise_layers_show_both_shares():
    p = dict(n=1, c=4, h=6, w=5, k=4, f=3, stride=1, padding=1, groups=4)
    gemm = dict(call="NumPy 64×64 a @ b, float64", throughput=1.0)
    # x 120, w 36, b 4, out 120 elements; the backward reads dout, x, w and writes dx, dw, db
    for name, elements in (("conv2d", 120 + 36 + 4 + 120),
                           ("conv2d_backward", 2 * (120 + 36) + 4 + 120)):
        rec = run_case(OPS[name], Case(name, "dw", p), "float64", threads=1, budget=0.0, gemm=gemm)
        assert rec["baselines"]["copy"]["bytes"] == elements * 8
        assert all(set(c["share"]) == {"gemm", "copy"} for c in _pyconv_entries(rec))
        table = results_table([rec])
        assert table.index("% GEMM") < table.index("% copy")


def test_dx_table_times_dx_alone_on_the_3x3_layers():
    op = OPS["conv2d_backward_dx"]
    assert op.timed_function == "conv2d_backward" and op.available()
    assert [c.name for c in op.cases] == ["tiny", "vgg_3x3", "resnet_late"]
    rec = run_case(op, _tiny("conv2d_backward_dx"), "float64", threads=1, budget=0.0)
    by_label = {c["label"]: c for c in rec["contenders"]}
    assert by_label["pyconv winograd"]["status"] == "ok"
    assert {c["label"] for c in _pyconv_entries(rec)} >= {"pyconv im2col", "pyconv winograd"}
    # checked against dx alone: a result with dw and db too would not compare as one array
    assert all(c["error_ratio"] <= 1 for c in _pyconv_entries(rec))
    assert rec["work"] == pytest.approx(conv.forward_work(_tiny("conv2d").params, np.float64))


def test_a_method_missing_from_the_build_is_skipped_not_an_error():
    skip = conv._method_skip("no-such-method", None, False)
    assert "not in this build" in skip(_tiny("conv2d"), "float32")
    rule = conv._method_skip("direct", lambda case, dtype, backward: "3x3 only", True)
    assert rule(_tiny("conv2d"), "float32") == "3x3 only"


def test_contenders_times_only_those_named_and_still_checks():
    rec = run_case(OPS["l1_distances"], TINY_L1, "float32", threads=1, budget=0.0,
                   names=["pyconv", "scipy"])
    by_label = {c["label"]: c for c in rec["contenders"]}
    assert by_label["pyconv"]["status"] == by_label["scipy"]["status"] == "ok"
    oracle = by_label["oracle"]
    assert oracle["status"] == "skipped" and "first" in oracle and "times" not in oracle
    assert all(c["status"] == "skipped" and "--contenders" in c["detail"]
               for label, c in by_label.items() if label not in ("pyconv", "scipy", "oracle"))


def test_thread_clock_needs_one_thread(tmp_path):
    done = _bench("--clock", "thread", "--threads", "2", cwd=tmp_path)
    assert done.returncode == 2 and "--threads 1" in done.stderr


def _old_format(rec):
    """A record as runs before the share columns saved it."""
    rec = dict(rec, contenders=[{k: v for k, v in c.items() if k != "share"}
                                for c in rec["contenders"]])
    del rec["baselines"]
    return rec


def test_runs_saved_before_the_share_columns_still_read():
    rec = run_case(OPS["max_pool2d"], _tiny("max_pool2d"), "float32", threads=1, budget=0.0)
    old = {"command": "pyconv bench", "machine": {"date": "then"}, "results": [_old_format(rec)]}
    new = {"command": "pyconv bench", "machine": {"date": "now"}, "results": [rec]}
    assert "old/new" in compare_table(old, new)
    assert "% copy" not in results_table(old["results"])
    matmul = {"float32": dict(n=64, throughput=3.0)}
    new.update(clock="thread", matmul=matmul)
    assert "different clocks: wall then, thread now" in compare_table(old, new)
    assert "matmul float32 (the machine): 3 GFLOP/s then, 3 now" in compare_table(new, new)


@pytest.mark.skipif(not OLD_RUN.exists(), reason="no saved run in docs/")
def test_the_saved_run_in_docs_compares():
    run = load_run(OLD_RUN)
    table = compare_table(run, run)
    assert "old/new" in table and "1.00" in table
