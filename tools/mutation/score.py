"""The mutation score of the last `tools/mutation/run.sh` run, per module, as JSON.

score = killed / (checked mutants - equivalent). Killed includes timeouts (the tests noticed the
change); "no tests" and survivors count against it.
Equivalent mutants are the ones listed in tools/mutation/equivalents.md with the line they produce;
an entry whose mutant no longer makes that line (the code moved on) is reported as stale and
not subtracted. Usage: python tools/mutation/score.py ['engine.analysis*' ...]
"""
from __future__ import annotations

import fnmatch
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DETECTED = {"killed", "timeout", "caught by type check"}
ENTRY = re.compile(r"^- `(?P<name>[\w.]+__mutmut_\d+)` makes `(?P<line>.+)`$")


def equivalents() -> dict[str, str]:
    """mutant name -> the mutated line (stripped) it must still produce to count as listed."""
    text = (Path(__file__).resolve().parent / "equivalents.md").read_text()
    return {m["name"]: m["line"] for m in map(ENTRY.match, text.splitlines()) if m}


def main(patterns: list[str]) -> dict:
    import os
    os.chdir(ROOT)
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.utils.file_utils import walk_mutatable_files
    from mutmut.mutation.data import SourceFileMutationData
    from mutmut.stats import status_by_exit_code

    listed = equivalents()
    per_module: dict[str, Counter] = defaultdict(Counter)
    survivors, stale = [], []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, code in data.exit_code_by_key.items():
            if patterns and not any(fnmatch.fnmatch(name, p) for p in patterns):
                continue
            status = status_by_exit_code[code]
            counts = per_module[str(path)]
            counts["mutants"] += 1
            if status in DETECTED:
                counts["killed"] += 1
            elif name in listed:
                diff = get_diff_for_mutant(name, path=path)
                added = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
                if listed[name] in added:
                    counts["equivalent"] += 1
                else:
                    stale.append(name)
                    counts[status] += 1
                    survivors.append(name)
            else:
                counts[status] += 1
                if status != "not checked":
                    survivors.append(name)
    total = Counter()
    for counts in per_module.values():
        total.update(counts)
    # A run cut short leaves mutants "not checked": the score counts only the checked ones, and
    # the output says how many were left.
    score = lambda c: round(c["killed"] / max(c["mutants"] - c["equivalent"] - c["not checked"], 1), 4)  # noqa: E731
    return {"score": score(total), "not_checked": total["not checked"], "total": dict(total),
            "modules": {m: {**c, "score": score(c)} for m, c in sorted(per_module.items())},
            "not_killed": sorted(survivors), "stale_equivalents": sorted(stale)}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:]), indent=1))
