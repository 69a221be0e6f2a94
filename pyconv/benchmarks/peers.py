"""The peers pyconv is timed against, found at run time, and their thread counts."""
import contextlib
import importlib

# module -> (distribution to install, what it is timed on)
PEERS = {
    "torch": ("torch", "conv, pool, L1"),
    "scipy": ("scipy", "L1 (cdist), single-channel conv"),
    "sklearn": ("scikit-learn", "L1"),
    "faiss": ("faiss-cpu", "L1, float32 only"),
}


def load(name):
    """The peer module ``name``, or None when it is not installed or fails to import."""
    try:
        return importlib.import_module(name)
    except Exception:  # a broken install counts as missing: it is reported, not raised
        return None


def versions():
    """``{module: version or None}`` for every peer."""
    found = {}
    for name in PEERS:
        module = load(name)
        found[name] = None if module is None else getattr(module, "__version__", "?")
    return found


@contextlib.contextmanager
def limit_threads(n):
    """Run the block with every library on ``n`` threads: BLAS, OpenMP, torch, faiss.

    threadpoolctl limits the BLAS and OpenMP pools it finds (NumPy's BLAS for
    the oracles, torch's OpenMP); torch's and faiss's own setters are set too
    and restored on exit.
    """
    from threadpoolctl import threadpool_limits

    torch, faiss = load("torch"), load("faiss")
    saved_torch = torch.get_num_threads() if torch else None
    saved_faiss = faiss.omp_get_max_threads() if faiss else None
    try:
        with threadpool_limits(limits=n):
            if torch:
                torch.set_num_threads(n)
            if faiss:
                faiss.omp_set_num_threads(n)
            yield
    finally:
        if torch:
            torch.set_num_threads(saved_torch)
        if faiss:
            faiss.omp_set_num_threads(saved_faiss)
