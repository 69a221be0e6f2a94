"""Options and the report header of the pytest-benchmark suite."""
from pyconv.benchmarks.peers import PEERS, versions


def pytest_addoption(parser):
    parser.addoption("--bench-quick", action="store_true",
                     help="pyconv benchmarks: every case scaled down, as pyconv bench --quick")


def pytest_report_header(config):
    lines = []
    for name, version in versions().items():
        if version is None:
            lines.append(f"{name}: not installed, its benchmarks are skipped "
                         f"(pip install {PEERS[name][0]})")
        else:
            lines.append(f"{name} {version}")
    return "peers: " + "; ".join(lines)
