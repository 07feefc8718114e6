#!/usr/bin/env bash
# Print the test command of README's quick start: the second command of the first ```bash block,
# the one whose comment says it runs the tests. Fails loudly if README no longer has it.
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=$(awk '/^```bash/{inblock=1; next} inblock && /^```/{exit} inblock' README.md \
      | grep -E '#[[:space:]]*run the tests' | head -n 1 | sed -E 's/[[:space:]]*#.*$//')
if [ -z "$cmd" ]; then
  echo "README.md's quick start has no line marked '# run the tests'" >&2
  exit 1
fi
printf '%s\n' "$cmd"
