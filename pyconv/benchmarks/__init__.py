"""The benchmark: one table of real cases, timed by ``pyconv bench`` and by ``bench/``.

Each case (a layer, a pool or an L1 shape of a real network or search) is run
by pyconv's kernel, by its NumPy oracle and by the peers that are installed
(PyTorch, SciPy, scikit-learn, faiss). Every result is checked against the
oracle before it is timed; a mismatch is reported, never timed.
"""
