"""pyconv: fast CPU kernels of convolutional networks, from NumPy.

Convolution, pooling and pairwise L1 distance as Cython/OpenMP kernels behind
a validating NumPy API, each with a pure-NumPy oracle in
:mod:`pyconv.reference`.
"""
import importlib.util

from . import graph, reference
from .backprop import squared_norm, squared_norm_backward
from .config import __version__, build_info, show_config
from .cpu import cpu_features
from .conv import (WinogradFilters, conv2d, conv2d_backward, get_workspace_limit,
                   set_workspace_limit, workspace_limit)
from .distance import l1_distances, l1_topk
from .gradcheck import gradcheck, numerical_gradient, relative_error
from .neighbors import KNearestNeighbor
from .precision import (float32_conv_precision, get_float32_conv_precision,
                        set_float32_conv_precision)
from .pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from .shapes import (InvalidConfigError, conv_output_size, conv_param_count, pool_output_size,
                     summary)
from .threads import (get_num_threads, num_threads, openmp_enabled, resolve_num_threads,
                      set_num_threads)

__all__ = [
    "__version__", "show_config", "build_info", "cpu_features",
    "openmp_enabled", "get_num_threads", "set_num_threads", "num_threads",
    "resolve_num_threads",
    "InvalidConfigError", "conv_output_size", "pool_output_size", "conv_param_count", "summary",
    "l1_distances", "l1_topk", "KNearestNeighbor",
    "max_pool2d", "max_pool2d_backward", "avg_pool2d", "avg_pool2d_backward",
    "conv2d", "conv2d_backward", "WinogradFilters", "get_workspace_limit", "set_workspace_limit",
    "workspace_limit",
    "get_float32_conv_precision", "set_float32_conv_precision", "float32_conv_precision",
    "squared_norm", "squared_norm_backward",
    "gradcheck", "numerical_gradient", "relative_error",
]

if importlib.util.find_spec("sklearn") is not None:  # found, not imported
    __all__.append("KNeighborsClassifier")


def __getattr__(name):
    """``KNeighborsClassifier`` needs scikit-learn, imported only when it is first used."""
    if name == "KNeighborsClassifier":
        try:
            from .estimators import KNeighborsClassifier
        except ImportError as exc:
            raise ImportError(f"pyconv.KNeighborsClassifier is a scikit-learn estimator and "
                              f"needs scikit-learn >= 1.6: pip install 'pyconv[sklearn]' "
                              f"({exc})") from exc
        return KNeighborsClassifier
    raise AttributeError(f"module 'pyconv' has no attribute {name!r}")
