"""Pure-NumPy oracles: the definitions every pyconv kernel is tested against.

They are written for clarity, not speed; the ``*_naive`` and loop versions
are for small inputs only.
"""
from .conv import conv2d_backward_im2col, conv2d_backward_naive, conv2d_im2col, conv2d_naive
from .l1 import l1_no_loops, l1_one_loop, l1_two_loops
from .pool import (avg_pool2d_backward_naive, avg_pool2d_naive, max_pool2d_backward_naive,
                   max_pool2d_naive)

__all__ = [
    "conv2d_naive", "conv2d_im2col", "conv2d_backward_naive", "conv2d_backward_im2col",
    "max_pool2d_naive", "max_pool2d_backward_naive",
    "avg_pool2d_naive", "avg_pool2d_backward_naive",
    "l1_two_loops", "l1_one_loop", "l1_no_loops",
]
