"""A user's mistake is one line and exit 2; a bug keeps its traceback, with a one-line hint, and exit 1
(a numpy or pandas error inside the analysis used to print as one line, as if the input were wrong)."""
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.cli.common import INTERNAL_HINT

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
FIT = ["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed"]


def test_a_bug_inside_a_command_keeps_its_traceback(paper_db, monkeypatch):
    from engine.analysis import fit

    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together with shapes (3,) (4,)")
    monkeypatch.setattr(fit, "analyse", broken)
    res = runner.invoke(app, [*FIT, "--db", str(paper_db)])
    assert res.exit_code == 1
    assert "Traceback" in res.output and "operands could not be broadcast" in res.output
    assert " ".join(res.output.split()).endswith(" ".join(INTERNAL_HINT.split()))


@pytest.mark.parametrize("args, message", [
    (["--n-boot", "-1"], "--n-boot -1 must be between 0"),
    (["--features", "log_n_cats"], "unknown feature 'log_n_cats'"),
])
def test_a_users_mistake_is_still_one_line(paper_db, args, message):
    res = runner.invoke(app, [*FIT, "--db", str(paper_db), *args])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert message in " ".join(res.output.split())


INTERRUPTED_CLI = """
import typer
from engine.cli.common import interrupted

app = typer.Typer()


@app.command()
def main(reset: bool = False):
    try:
        exec("raise KeyboardInterrupt")   # a Ctrl-C landing while a library execs a string
    except KeyboardInterrupt:
        raise interrupted() if reset else typer.Exit(130)


app()
"""


def test_a_handled_ctrl_c_exits_130_even_when_it_escaped_an_exec(tmp_path):
    """Seen as a rare -2 of `python -m engine.cli worker` stopped by Ctrl-C: CPython's memory of the
    KeyboardInterrupt outlives the except that handled it, unless interrupted() clears it."""
    import subprocess
    import sys
    (tmp_path / "handled_cli.py").write_text(INTERRUPTED_CLI)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}

    def status(*args):
        return subprocess.run([sys.executable, "-m", "handled_cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60).returncode
    assert status() == -2            # the CPython behaviour this guards against (3.11)
    assert status("--reset") == 130
