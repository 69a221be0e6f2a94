"""``pyconv bench``: time the table, print it, save it, chart it, compare two runs."""
import importlib.util
import json
import sys

from ..threads import resolve_num_threads
from .baselines import MATMUL_SIZE
from .machine import busy_warning, load_average, machine_info
from .peers import PEERS, versions
from .report import compare_table, load_run, matmul_line, results_table
from .runner import run
from .table import select
from .timing import CLOCKS

FAMILY_NAMES = ("conv", "pool", "l1")
BUDGET = {False: 1.5, True: 0.05}  # seconds of timed calls per contender, full and --quick

DESCRIPTION = """\
Time pyconv's kernels beside their NumPy oracles and the peers that are
installed (PyTorch, SciPy, scikit-learn, faiss) on the layers, pools and L1
shapes of real networks. Every result is checked against the oracle first; a
mismatch is reported, not timed. The contenders are then timed in three turns,
each a block of warm-up and repeated calls per contender; the table shows the
medians, and pyconv's share of what the machine does in the same run: of
NumPy's matmul for convolutions (% GEMM), of np.copyto's bandwidth for pooling
and depthwise convolutions (% copy)."""


def add_parser(commands):
    """Add the ``bench`` subcommand to the ``pyconv`` command's subparsers."""
    p = commands.add_parser("bench", help="time pyconv against its oracles and peers",
                            description=DESCRIPTION)
    p.add_argument("--quick", action="store_true",
                   help="every case scaled down: under a minute on 2 cores")
    p.add_argument("--only", choices=FAMILY_NAMES, help="one family of kernels")
    p.add_argument("--case", nargs="+", metavar="NAME",
                   help="only the cases whose name contains one of these, e.g. tiny vgg")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for every contender (default: all cores; -1 all, -2 all but one)")
    p.add_argument("--dtype", nargs="+", choices=("float32", "float64"), default=["float32"],
                   help="dtypes to time (default: float32)")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="seconds of timed calls per contender and case, after a warm-up of at "
                        "most 0.1 s (default 1.5, 0.05 with --quick); at least 3 calls are timed; "
                        "a checked call of over a second is the one sample")
    p.add_argument("--contenders", nargs="+", metavar="NAME",
                   help="time only these contenders (a label or a word of one: auto, torch, "
                        "oracle, ...); the oracle still runs once, as the check")
    p.add_argument("--clock", choices=tuple(CLOCKS), default="wall",
                   help="wall: elapsed time (default); thread: CPU time of the calling thread, "
                        "which other processes' load barely moves (needs --threads 1)")
    p.add_argument("--matmul-size", type=int, default=MATMUL_SIZE, metavar="N",
                   help=f"side of NumPy's square matmul that %% GEMM divides by "
                        f"(default {MATMUL_SIZE})")
    p.add_argument("--json", metavar="FILE", help="save results and machine facts as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="save a chart of the speed-ups (matplotlib)")
    p.add_argument("--compare", nargs=2, metavar=("OLD.json", "NEW.json"),
                   help="print the ratios between two saved runs instead of running")
    p.set_defaults(func=bench)
    return p


def _command_line(args):
    parts = ["pyconv bench"]
    if args.quick:
        parts.append("--quick")
    if args.only:
        parts.append(f"--only {args.only}")
    if args.case:
        parts.append("--case " + " ".join(args.case))
    if args.threads is not None:
        parts.append(f"--threads {args.threads}")
    if args.dtype != ["float32"]:
        parts.append("--dtype " + " ".join(args.dtype))
    if args.budget is not None:
        parts.append(f"--budget {args.budget:g}")
    if args.contenders:
        parts.append("--contenders " + " ".join(args.contenders))
    if args.clock != "wall":
        parts.append(f"--clock {args.clock}")
    if args.matmul_size != MATMUL_SIZE:
        parts.append(f"--matmul-size {args.matmul_size}")
    return " ".join(parts)


def _peer_lines():
    found = versions()
    have = ", ".join(f"{name} {v}" for name, v in found.items() if v is not None)
    lines = [f"peers: {have or 'none installed'}"]
    for name, v in found.items():
        if v is None:
            dist, used = PEERS[name]
            lines.append(f"{name}: not installed, skipped (pip install {dist}; times {used})")
    return lines


def _progress(total):
    from tqdm import tqdm

    return tqdm(total=total, unit="case", file=sys.stderr, leave=False,
                bar_format="{l_bar}{bar:20}| {n}/{total} [{elapsed}<{remaining}] {postfix}")


def _usage_error(args):
    """What is wrong with the arguments or the environment of a run, or None."""
    needed = ("tqdm", "threadpoolctl") + (("matplotlib",) if args.plot else ())
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        return (f"needs {', '.join(missing)}: pip install {' '.join(missing)} "
                f"(or install pyconv with its bench extra: pip install \".[bench]\")")
    try:
        resolve_num_threads(args.threads)
    except (TypeError, ValueError) as exc:
        return f"--threads: {exc}"
    if args.budget is not None and args.budget < 0:
        return f"--budget must be >= 0 seconds, got {args.budget}"
    if args.clock == "thread" and resolve_num_threads(args.threads) != 1:
        return ("--clock thread needs --threads 1: the CPU time of the other threads "
                "is not counted")
    if args.matmul_size < 1:
        return f"--matmul-size must be >= 1, got {args.matmul_size}"
    return None


def _header(info, quick, left_out):
    conf = info["pyconv"]
    lines = [f"pyconv {conf['pyconv']} bench{' --quick' if quick else ''}: {info['cpu']}, "
             f"{info['threads']} thread{'s' if info['threads'] != 1 else ''}, "
             f"OpenMP {conf['OpenMP']}, "
             f"NumPy {conf['numpy']} with {conf['numpy BLAS']}"]
    lines += _peer_lines() + left_out
    warning = busy_warning(info["cores"]["usable"])
    return "\n".join(lines + ([warning] if warning else []))


def _compare(paths):
    try:
        old, new = (load_run(path) for path in paths)
    except (OSError, ValueError) as exc:
        print(f"pyconv bench: {exc}", file=sys.stderr)
        return 2
    print(compare_table(old, new))
    return 0


def bench(args):
    """Run ``pyconv bench`` with parsed ``args``; returns the exit status.

    1 when a pyconv kernel's result mismatched its oracle or raised, 2 on a
    usage error, else 0.
    """
    if args.compare:
        return _compare(args.compare)
    error = _usage_error(args)
    if error:
        print(f"pyconv bench: {error}", file=sys.stderr)
        return 2
    threads = resolve_num_threads(args.threads)
    selected, left_out = select(args.only, args.case, args.quick)
    info = machine_info(threads)
    print(_header(info, args.quick, left_out))
    if not selected:
        print("pyconv bench: no case selected", file=sys.stderr)
        return 2
    progress = _progress(len(selected) * len(args.dtype))
    try:
        budget = BUDGET[args.quick] if args.budget is None else args.budget
        records, matmul = run(selected, args.dtype, threads, budget, progress,
                              CLOCKS[args.clock], args.matmul_size, args.contenders)
    finally:
        progress.close()
    info["load_average_after"] = load_average()
    if matmul:
        print(matmul_line(matmul, threads))
    print()
    print(results_table(records))
    command = _command_line(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(command=command, quick=args.quick, dtypes=args.dtype,
                           clock=args.clock, machine=info, matmul=matmul, results=records),
                      f, indent=1)
        print(f"\nresults saved to {args.json}")
    if args.plot:
        from .plot import plot

        plot(records, args.plot, title=f"{command} · {info['cpu']}, {threads} threads")
        print(f"chart saved to {args.plot}")
    failed = any(c["role"] == "pyconv" and c["status"] in ("mismatch", "error")
                 for rec in records for c in rec["contenders"])
    return 1 if failed else 0
