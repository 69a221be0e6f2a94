"""Tables of a run's results, and of the ratios between two saved runs."""
import json

from .baselines import TITLES


def _grid(header, rows):
    """Left-aligned first columns, right-aligned numbers, two spaces between."""
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [str(c).ljust(w) if i < 3 else str(c).rjust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _number(x):
    return f"{x:.3g}" if x < 100 else f"{x:.0f}"


def _speedup_cell(ours, theirs):
    if theirs["status"] == "ok":
        return f"{theirs['median'] / ours['median']:.3g}"
    return "—" if theirs["status"] == "skipped" else theirs["status"]


def speedups(record):
    """``{pyconv label: {reference label: their median / pyconv's median}}`` of one record."""
    out = {}
    for ours in record["contenders"]:
        if ours["role"] != "pyconv" or ours["status"] != "ok":
            continue
        out[ours["label"]] = {
            theirs["label"]: theirs["median"] / ours["median"]
            for theirs in record["contenders"]
            if theirs["role"] != "pyconv" and theirs["status"] == "ok"}
    return out


def matmul_line(matmul, threads):
    """The machine's matmul speed, one dtype after the other: ``matmul: ... GFLOP/s``."""
    speeds = ", ".join(f"{dtype} {_number(m['throughput'])}" for dtype, m in matmul.items())
    n = next(iter(matmul.values()))["n"]
    return (f"matmul (NumPy {n}×{n} a @ b, {threads} thread{'s' if threads != 1 else ''}), "
            f"GFLOP/s: {speeds}")


def _baseline_lines(recs, names):
    """What each share column divides by, measured in this run."""
    lines = []
    if "gemm" in names:
        gemm = next(r["baselines"]["gemm"] for r in recs if "gemm" in r.get("baselines", {}))
        lines.append(f"{TITLES['gemm']} = pyconv's GFLOP/s / those of {gemm['call']} "
                     f"({_number(gemm['throughput'])} GFLOP/s in this run)")
    if "copy" in names:
        speeds = ", ".join(f"{r['case']} {_number(r['baselines']['copy']['throughput'])}"
                           for r in recs if "copy" in r.get("baselines", {}))
        lines.append(f"{TITLES['copy']} = pyconv's bytes read + written per second / "
                     f"np.copyto's of the same bytes, on as many threads, in this run "
                     f"(GB/s: {speeds})")
    return lines


def _share_cell(ours, name):
    value = ours.get("share", {}).get(name)
    return "—" if value is None else f"{100 * value:.0f}" if value >= 0.1 else f"{100 * value:.2g}"


def results_table(records):
    """The text tables of a run: one per operation and dtype, one row per pyconv kernel.

    Columns: the case and its shape, the pyconv kernel, its median time and
    throughput, its share of the baselines measured in the run (``% GEMM``,
    ``% copy``: see :mod:`pyconv.benchmarks.baselines`) where the operation
    has them, and for every other contender its median time over pyconv's
    (above 1, pyconv is faster). Mismatches and errors are listed under the
    table; "—" means the contender does not run that case.
    """
    blocks = []
    groups = {}
    for rec in records:
        groups.setdefault((rec["op"], rec["dtype"]), []).append(rec)
    for (op, dtype), recs in groups.items():
        refs = []
        for rec in recs:
            for c in rec["contenders"]:
                if c["role"] != "pyconv" and c["status"] != "skipped" and c["label"] not in refs:
                    refs.append(c["label"])
        shares = [name for name in TITLES if any(name in r.get("baselines", {}) for r in recs)]
        unit = recs[0]["unit"]
        header = (["case", "shape", "pyconv", "ms", unit] + [TITLES[n] for n in shares]
                  + [f"×{r}" for r in refs])
        rows, notes = [], []
        for rec in recs:
            by_label = {c["label"]: c for c in rec["contenders"]}
            case, shape = rec["case"], rec["shape"]
            for ours in rec["contenders"]:
                if ours["role"] != "pyconv" or ours["status"] == "skipped":
                    continue
                kernel = ours["label"].replace("pyconv", "").strip() or "pyconv"
                if ours["status"] != "ok":
                    rows.append([case, shape, kernel, ours["status"]]
                                + ["—"] * (1 + len(shares) + len(refs)))
                else:
                    rows.append([case, shape, kernel, _number(ours["median"] * 1e3),
                                 _number(ours["throughput"])]
                                + [_share_cell(ours, n) for n in shares]
                                + [_speedup_cell(ours, by_label[r]) if r in by_label else "—"
                                   for r in refs])
                case = shape = ""  # named once per case
            notes += [f"  {rec['case']}, {c['label']}: {c['status']}: {c['detail']}"
                      for c in rec["contenders"] if c["status"] in ("mismatch", "error")]
        title = (f"{op} · {dtype} · {unit} = {recs[0]['work_doc']} · "
                 f"×X = X's median time / pyconv's (above 1: pyconv faster)")
        blocks.append("\n".join([title] + _baseline_lines(recs, shares)
                                 + [_grid(header, rows)] + notes))
    return "\n\n".join(blocks)


def _medians(run):
    out = {}
    for rec in run["results"]:
        for c in rec["contenders"]:
            if c["status"] == "ok":
                key = (rec["op"], rec["case"], rec["dtype"], c["label"])
                out[key] = (c["median"], rec["params"])
    return out


def load_run(path):
    """A run saved by ``pyconv bench --json``."""
    with open(path) as f:
        run = json.load(f)
    if "results" not in run or "machine" not in run:
        raise ValueError(f"{path} is not a file written by pyconv bench --json")
    return run


def compare_table(old, new):
    """The ratios between two saved runs: old median / new median (above 1: faster now).

    Only entries timed in both runs on the same shapes are compared; the peers'
    ratios, and the matmul's where both runs timed it, show how much the
    machine itself changed between the runs. Runs saved before the matmul was
    timed (no ``matmul``, no ``clock``: the wall clock) compare all the same.
    """
    a, b = _medians(old), _medians(new)
    rows, differ = [], 0
    for key in a:
        if key not in b:
            continue
        (t_old, p_old), (t_new, p_new) = a[key], b[key]
        if p_old != p_new:
            differ += 1
            continue
        op, case, dtype, label = key
        rows.append([f"{op} {case}", dtype, label, _number(t_old * 1e3), _number(t_new * 1e3),
                     f"{t_old / t_new:.2f}"])
    lines = [f"old: {old['machine']['date']} {old['command']}",
             f"new: {new['machine']['date']} {new['command']}"]
    if rows:
        lines.append(_grid(["case", "dtype", "contender", "old ms", "new ms", "old/new"], rows))
    else:
        lines.append("no entry was timed in both runs on the same shapes")
    for dtype in old.get("matmul", {}).keys() & new.get("matmul", {}).keys():
        m_old, m_new = old["matmul"][dtype], new["matmul"][dtype]
        if m_old["n"] == m_new["n"]:
            lines.append(f"matmul {dtype} (the machine): {_number(m_old['throughput'])} GFLOP/s "
                         f"then, {_number(m_new['throughput'])} now")
    clocks = old.get("clock", "wall"), new.get("clock", "wall")
    if clocks[0] != clocks[1]:
        lines.append(f"the runs used different clocks: {clocks[0]} then, {clocks[1]} now")
    if differ:
        lines.append(f"{differ} entries left out: their shapes differ (--quick in one run only?)")
    only = len(set(a) ^ set(b))
    if only:
        lines.append(f"{only} entries timed in one run only, left out")
    return "\n".join(lines)
