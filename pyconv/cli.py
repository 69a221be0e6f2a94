"""The ``pyconv`` command: ``pyconv summary ...``, ``pyconv config`` and ``pyconv bench``."""
import argparse
import sys

from .benchmarks.command import add_parser as add_bench_parser
from .config import show_config
from .shapes import LAYER_SYNTAX, InvalidConfigError, summary


def _summary(args):
    try:
        print(summary(args.input, args.layers, strict=not args.floor))
    except (InvalidConfigError, ValueError) as exc:
        print(f"pyconv summary: {exc}", file=sys.stderr)
        return 2
    return 0


def _config(args):
    show_config()
    return 0


def build_parser():
    """The argument parser of the ``pyconv`` command."""
    parser = argparse.ArgumentParser(prog="pyconv", description="Fast conv-net kernels for NumPy.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser(
        "summary",
        help="output shape and parameters of each layer of a conv net",
        description="Print the output shape and trainable parameters of each layer.",
        epilog=LAYER_SYNTAX + "\nExample: pyconv summary 227x227x3 conv:k=96,f=11,s=4 maxpool:f=3,s=2",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", help="input shape HxWxC, e.g. 227x227x3")
    p.add_argument("layers", nargs="+", help="layers, e.g. conv:k=96,f=11,s=4")
    p.add_argument("--floor", action="store_true",
                   help="floor non-integer output sizes (PyTorch) instead of refusing them")
    p.set_defaults(func=_summary)
    p = commands.add_parser("config", help="print version, build flags, OpenMP, threads and CPU levels")
    p.set_defaults(func=_config)
    add_bench_parser(commands)
    return parser


def main(argv=None):
    """Run the ``pyconv`` command; returns its exit status."""
    args = build_parser().parse_args(argv)
    return args.func(args)
