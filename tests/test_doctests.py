"""Run the Examples sections of every public module's docstrings."""
import doctest
import importlib
import pathlib
import pkgutil

import numpy as np
import pytest

import pyconv

MODULES = sorted(name for _, name, _ in pkgutil.walk_packages(pyconv.__path__, "pyconv.")
                 if not name.rsplit(".", 1)[-1].startswith("_") and name != "pyconv.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name == "pyconv.estimators":  # the scikit-learn estimators need scikit-learn
        pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_readme_examples():
    readme = pathlib.Path(__file__).resolve().parent.parent / "README.md"
    result = doctest.testfile(str(readme), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
