"""Run pyconv calls read as JSON lines on stdin; answer each with one JSON line on stdout.

The fuzz test in ``test_bad_input.py`` sends its calls here, so a call that
crashes the interpreter takes down this process and not pytest. A call is
``{"func": "max_pool2d", "kwargs": {name: value}}`` where ``func`` names a
function of ``pyconv`` or ``pyconv.reference`` and a value is plain JSON or
an array recipe ``{"shape": [...], "dtype": "f4", "layout": "F", "seed": 0}``.
"""
import json
import sys

import numpy as np

import pyconv

CLEAN = (ValueError, TypeError, MemoryError)


def _layout(arr, layout):
    """``arr``'s values in another memory layout (or read-only)."""
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "reversed" and arr.ndim:
        return np.flip(np.flip(arr).copy())  # same values, negative strides
    if layout == "strided" and arr.ndim:
        doubled = np.repeat(arr, 2, axis=-1)
        return doubled[..., ::2]
    if layout == "readonly":
        arr.flags.writeable = False
        return arr
    if layout == "broadcast" and arr.ndim and arr.shape[-1]:
        return np.broadcast_to(arr[..., :1], arr.shape)
    return arr


def build(value):
    """The argument a recipe describes: an array for an array recipe, else the value."""
    if not (isinstance(value, dict) and "shape" in value):
        return value
    rng = np.random.default_rng(value["seed"])
    arr = rng.integers(-3, 4, size=value["shape"])  # small integers: ties and exact sums
    return _layout(arr.astype(value["dtype"]), value["layout"])


def run(call):
    func = getattr(pyconv, call["func"], None) or getattr(pyconv.reference, call["func"])
    try:
        func(**{name: build(v) for name, v in call["kwargs"].items()})
    except CLEAN as exc:
        return {"outcome": "clean", "error": type(exc).__name__, "message": str(exc)[:300]}
    except Exception as exc:  # noqa: BLE001 -- any other exception is what the fuzz looks for
        return {"outcome": "unclean", "error": type(exc).__name__, "message": str(exc)[:300]}
    return {"outcome": "ok"}


def main():
    for line in sys.stdin:
        print(json.dumps(run(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()
