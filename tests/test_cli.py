import subprocess
import sys

from pyconv.cli import main


def test_summary_prints_the_alexnet_table(capsys):
    assert main(["summary", "227x227x3", "conv:k=96,f=11,s=4", "maxpool:f=3,s=2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["conv:k=96,f=11,s=4", "(55,", "55,", "96)", "34,944"]
    assert lines[3].split() == ["maxpool:f=3,s=2", "(27,", "27,", "96)", "0"]


def test_summary_reports_an_invalid_layer_without_a_traceback(capsys):
    assert main(["summary", "32x32x3", "conv:k=1,f=5,s=2"]) == 2
    err = capsys.readouterr().err
    assert "(32 - 5 + 2*0)/2 + 1 = 14.5" in err and "Traceback" not in err


def test_module_entry_point_and_config(tmp_path):
    # run outside the checkout, so that the installed package is imported
    out = subprocess.run([sys.executable, "-m", "pyconv", "config"], capture_output=True,
                         text=True, check=True, cwd=tmp_path).stdout
    assert "OpenMP:" in out and "numpy BLAS:" in out and "compile flags:" in out


def test_help_documents_the_layer_syntax(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pyconv", "summary", "--help"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    for kind in ("conv:", "maxpool:", "avgpool:", "fc:"):
        assert kind in out
