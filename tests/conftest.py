"""Fixtures shared by the test modules."""
import pytest

from pyconv import cpu


@pytest.fixture(params=cpu.available())
def cpu_level(request):
    """Run the test once at each CPU level this machine has (portable included), every kernel
    at that level (see pyconv.cpu)."""
    with cpu.use_level(request.param):
        yield request.param
