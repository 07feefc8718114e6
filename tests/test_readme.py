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


def test_readme_headline_table_is_what_paper_check_prints():
    """The headline numbers are regenerated, not remembered: each row against engine.analysis.paper."""
    from engine.analysis.paper import paper_check
    text = (ROOT / "README.md").read_text()
    rows = {int(m.group(1)): m.group(0) for m in re.finditer(r"^\| (\d) \| [^\n]*$", text, re.M)}
    checked = paper_check()
    assert sorted(rows) == [r["equation"] for r in checked]
    for r in checked:
        cells = [c.strip() for c in rows[r["equation"]].strip("|").split("|")]
        c1 = cells[3].replace("[", "").replace("]", "").replace(",", "").split()
        c2 = cells[4].replace("[", "").replace("]", "").replace(",", "").split()
        for shown, value in zip(c1 + c2, [r["c1"], *r["c1_ci"], r["c2"], *r["c2_ci"]]):
            assert float(shown) == pytest.approx(value, rel=0.02), (r["equation"], shown, value)
        assert cells[5].startswith(f"{r['wrong_side']} of {r['real_points']} ")
        assert f"({r['wrong_side_beyond_noise']}" in cells[5]
    total = sum(r["wrong_side"] for r in checked), sum(r["real_points"] for r in checked)
    assert f"put {total[0]} of {total[1]} measured real points on the wrong side" in text.replace("\n", " ")
