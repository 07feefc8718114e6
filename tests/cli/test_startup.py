"""Start-up of the `engine` CLI, measured the way `python -X importtime` sees it: the commands a
user runs to ask questions must not load torch, diffusers, streamlit or scikit-learn."""
import subprocess
import sys

import pytest

FORBIDDEN = ("torch", "diffusers", "streamlit", "sklearn")


def imported(*args: str, code: str | None = None) -> set[str]:
    """Top-level package names of every module the command imported (from -X importtime)."""
    cmd = [sys.executable, "-X", "importtime"] + (["-c", code] if code else ["-m", "engine.cli", *args])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert names, proc.stderr[-2000:]  # importtime really reported something
    return names


@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["--help"],
    ["fit", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed", "--n-boot", "0"],
    ["equiv", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed", "--n-base", "5000",
     "--n-real-added", "5000", "--n-boot", "0"],
    ["queue", "list"],
], ids=["help", "fit", "equiv", "queue"])
def test_question_commands_do_not_load_heavy_libraries(paper_db, args):
    names = imported(*args, *(["--db", str(paper_db)] if args != ["--help"] else []))
    assert "typer" in names
    assert not names & set(FORBIDDEN), sorted(names & set(FORBIDDEN))


NUMERIC = ("numpy", "pandas", "pyarrow", "duckdb", "scipy", "statsmodels")


@pytest.mark.slow
def test_shared_cli_modules_import_only_typer_and_rich():
    # What every command pays for: the root app, the error rule and the runs group.
    names = imported(code="import engine.cli.common, engine.cli.runs")
    assert {"typer", "rich"} <= names
    assert not names & {*NUMERIC, *FORBIDDEN}, sorted(names)


@pytest.mark.slow
def test_help_loads_every_command_group_but_no_numeric_library():
    # `engine --help` builds the whole app (every group registers its commands) and lists them;
    # it once imported the analysis through engine.cli.analysis and took ~2 s instead of ~0.3 s.
    names = imported("--help")
    assert not names & {*NUMERIC, *FORBIDDEN}, sorted(names & {*NUMERIC, *FORBIDDEN})
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for command in ("fit", "equiv", "ir", "report", "figures", "paper-check", "claims", "quality", "queue", "runs", "store",
                    "study"):
        assert f" {command} " in proc.stdout, command
