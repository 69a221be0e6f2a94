"""Build pyconv's Cython kernels, with OpenMP where the compiler supports it.

Environment switches (all off by default):

* ``PYCONV_DEBUG=1``: bounds and initialisation checks on in every kernel, for
  running the test suite against a debug build.
* ``PYCONV_NATIVE=1``: add ``-march=native`` (faster on the build machine, may
  crash on another CPU, so never the default).
* ``PYCONV_DISABLE_OPENMP=1``: build serial kernels even if OpenMP is available.
"""
import glob
import json
import os
import sys
import tempfile
import textwrap
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        return n == omp_get_max_threads() ? 0 : 1;
    }
    """
)


def env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def openmp_flags(compiler):
    """Return (compile_args, link_args) for OpenMP, or None if it does not work."""
    if env_flag("PYCONV_DISABLE_OPENMP"):
        return None
    if compiler.compiler_type == "msvc":
        candidates = [(["/openmp"], [])]
    elif sys.platform == "darwin":
        candidates = [(["-Xpreprocessor", "-fopenmp"], ["-lomp"]), (["-fopenmp"], ["-fopenmp"])]
    else:
        candidates = [(["-fopenmp"], ["-fopenmp"])]
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "probe_openmp.c")
        with open(source, "w") as f:
            f.write(OPENMP_PROBE)
        for cflags, ldflags in candidates:
            try:
                objects = compiler.compile([source], output_dir=tmp, extra_postargs=cflags)
                compiler.link_executable(objects, "probe_openmp", output_dir=tmp, extra_postargs=ldflags)
            except Exception:  # any compile or link failure means "not with these flags"
                continue
            return cflags, ldflags
    return None


def compile_in_parallel(compiler, jobs):
    """Make ``compiler.compile`` compile its sources side by side, at most ``jobs`` at a time
    over all the extensions being built (setuptools compiles one source after another)."""
    serial = compiler.compile
    slots = threading.BoundedSemaphore(jobs)

    def compile_one(source, **kwargs):
        with slots:
            return serial([source], **kwargs)

    def compile(sources, output_dir=None, macros=None, include_dirs=None, debug=0,
                extra_preargs=None, extra_postargs=None, depends=None):
        kwargs = dict(output_dir=output_dir, macros=macros, include_dirs=include_dirs,
                      debug=debug, extra_preargs=extra_preargs, extra_postargs=extra_postargs,
                      depends=depends)
        with ThreadPoolExecutor(max_workers=max(len(sources), 1)) as pool:
            results = list(pool.map(lambda source: compile_one(source, **kwargs), sources))
        return [obj for objects in results for obj in objects]

    compiler.compile = compile


class BuildExt(build_ext):
    """build_ext that adds OpenMP and optimisation flags once they are known to work, and
    compiles on every core."""

    def build_extensions(self):
        self.force = self.force or rebuild
        jobs = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        compile_in_parallel(self.compiler, jobs or 1)
        self.parallel = len(self.extensions)  # each extension in its own thread
        openmp = openmp_flags(self.compiler)
        if openmp is None:
            cflags, ldflags = [], []
            bar = "#" * 78
            warnings.warn(
                f"\n{bar}\n# pyconv: the compiler cannot build OpenMP programs; the kernels will"
                f" run on ONE thread.\n# Install an OpenMP runtime (libgomp / libomp) and rebuild"
                f" for multi-core speed.\n{bar}"
            )
        else:
            cflags, ldflags = openmp
        if self.compiler.compiler_type != "msvc":
            cflags = cflags + ["-O3"]
            if env_flag("PYCONV_NATIVE"):
                cflags.append("-march=native")
        for ext in self.extensions:
            ext.extra_compile_args = ext.extra_compile_args + cflags
            ext.extra_link_args = ext.extra_link_args + ldflags
        super().build_extensions()
        self.build_info = {
            "openmp": openmp is not None,
            "compiler": " ".join(getattr(self.compiler, "compiler_so", []) or [self.compiler.compiler_type]),
            "extra_compile_args": cflags,
            "extra_link_args": ldflags,
            "debug": env_flag("PYCONV_DEBUG"),
        }
        self.write_build_info(os.path.join(self.build_lib, "pyconv"))

    def run(self):
        super().run()  # setuptools builds in build_lib, then copies for --inplace
        if self.inplace and getattr(self, "build_info", None):
            self.write_build_info(self.get_finalized_command("build_py").get_package_dir("pyconv"))

    def write_build_info(self, folder):
        """Record how the kernels were built, beside them, for ``pyconv.show_config()``."""
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "_build_info.json"), "w") as f:
            json.dump(self.build_info, f, indent=2)


# The kernel families each module runs: templates src/<family>_t.h, compiled once per
# element type and CPU level (see src/cpu_features.h), each variant its own translation
# unit so that they compile in parallel.
VARIANTS = {
    "_conv_direct": ["conv_direct_t.h", "conv_blocked_t.h"],
    "_conv_im2col": ["conv_gemm_t.h"],
    "_conv_nhwc": ["conv_depthwise_nhwc_t.h", "nhwc_swap_t.h"],
    "_conv_winograd": ["winograd_t.h", "conv_gemm_t.h"],
    "_distance": ["l1_t.h"],
    "_pool": ["pool_planes_t.h", "pool_simd_t.h", "pool_nhwc_t.h"],
}
LEVELS = ("portable", "avx2", "avx512")
DTYPES = (("f32", "float"), ("f64", "double"))
VARIANT_DIR = os.path.join("build", "variants")


def variant_sources(template):
    """Write (when changed) and return the variant translation units of one template."""
    family = template[: -len("_t.h")]
    os.makedirs(VARIANT_DIR, exist_ok=True)
    paths = []
    for level in LEVELS:
        for ts, t in DTYPES:
            path = os.path.join(VARIANT_DIR, f"{family}_{ts}_{level}.c")
            text = (f"/* Generated by setup.py: the {ts} {level} variant of src/{template}. */\n"
                    f"#define T {t}\n#define TS {ts}\n#define TS_F32 {int(ts == 'f32')}\n"
                    f"#define CPU_LEVEL CPU_{level.upper()}\n#define LEVEL {level}\n"
                    f'#include "cpu_variant.h"\n#include "{template}"\n'
                    "#if defined(__clang__) && CPU_LEVEL != CPU_PORTABLE\n"
                    "#pragma clang attribute pop\n#endif\n")
            try:
                with open(path) as f:
                    same = f.read() == text
            except OSError:
                same = False
            if not same:
                with open(path, "w") as f:
                    f.write(text)
            paths.append(path)
    return paths


def extensions():
    """One private module ``pyconv._<topic>`` per ``src/_<topic>.pyx``, with the variants of
    the kernel families it runs."""
    exts = []
    for pyx in sorted(glob.glob(os.path.join("src", "_*.pyx"))):
        topic = os.path.splitext(os.path.basename(pyx))[0]
        variants = [path for template in VARIANTS.get(topic, []) for path in variant_sources(template)]
        exts.append(
            Extension(
                f"pyconv.{topic}",
                sources=[pyx] + variants,
                include_dirs=[np.get_include(), "src"],
                depends=sorted(glob.glob(os.path.join("src", "*.h"))),  # rebuild on C helper edits
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return exts


def build_mode_changed():
    """Whether the switches differ from the last build's in this tree (recorded in build/).

    Cython regenerates C and setuptools recompiles only when sources are newer
    than their outputs, so without this a ``PYCONV_DEBUG=1`` build after a
    release build would silently reuse the release kernels (and vice versa).
    """
    mode = json.dumps({name: env_flag(name) for name in
                       ("PYCONV_DEBUG", "PYCONV_NATIVE", "PYCONV_DISABLE_OPENMP")})
    stamp = os.path.join("build", "pyconv-build-mode.json")
    try:
        with open(stamp) as f:
            changed = f.read() != mode
    except OSError:
        changed = True
    os.makedirs("build", exist_ok=True)
    with open(stamp, "w") as f:
        f.write(mode)
    return changed


debug = env_flag("PYCONV_DEBUG")
rebuild = build_mode_changed()
directives = {
    "language_level": 3,
    "boundscheck": debug,
    "wraparound": False,
    "initializedcheck": debug,
    "cdivision": True,
    "nonecheck": debug,
}

setup(
    ext_modules=cythonize(extensions(), compiler_directives=directives, include_path=["src"],
                          force=rebuild, build_dir=os.path.join("build", "cython"),
                          nthreads=os.cpu_count() or 1),
    cmdclass={"build_ext": BuildExt},
)
