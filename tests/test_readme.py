"""README's quick start is what a new user runs and what CI runs: keep them one and the same."""
import pytest
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S)
    assert block, "README.md has no ```bash quick start"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_setup_then_tests():
    lines = quick_start()
    assert len(lines) == 2, lines
    assert lines[0].split("#")[0].strip() == "bash run.sh"
    assert "run the tests" in lines[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme_command = quick_start()[1].split("#")[0].strip()
    # The last command CI runs is README's test command, byte for byte...
    last = [line.strip() for line in ci.splitlines() if line.strip() and not line.strip().startswith("#")][-1]
    assert last == readme_command
    # ...and CI's guard compares README's line (as the script reads it) with that same text.
    printed = subprocess.run(["bash", str(ROOT / "scripts" / "readme_test_command.sh")], capture_output=True,
                             text=True, check=True).stdout.strip()
    assert printed == readme_command and f'= "{readme_command}"' in ci


@pytest.mark.slow
def test_readme_test_command_collects_every_test_module_without_help(tmp_path):
    """The bug this guards: `.venv/bin/pytest` (unlike `python -m pytest`) does not put the
    repository root on sys.path, so `import tests.*` failed at collection."""
    command = quick_start()[1].split("#")[0].strip().split()
    executable = ROOT / command[0]
    if not executable.exists():  # a checkout whose venv lies elsewhere: the same pytest, by path
        executable = Path(sys.executable).with_name("pytest")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    proc = subprocess.run([str(executable), *command[1:], "--collect-only", "-q", "-p", "no:cacheprovider"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "error" not in proc.stdout.lower().split("\n")[-2], proc.stdout[-2000:]
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "tests").rglob("test_*.py")}
    collected = {line.split("::")[0] for line in proc.stdout.splitlines() if "::" in line}
    assert modules <= collected, modules - collected
