#!/usr/bin/env bash
# Runs the test suite: `test/run.sh` (everything), `test/run.sh pure` (no PostgreSQL),
# `test/run.sh pg` (real PostgreSQL tier only). Node 20's test runner does not expand
# globs, so the files are listed here explicitly, pure tier first.
set -euo pipefail
cd "$(dirname "$0")/.."
tier="${1:-all}"

mapfile -t pure < <(find test -name '*.test.ts' ! -name '*.pg.test.ts' -not -path '*/node_modules/*' | sort)
mapfile -t pg < <(find test -name '*.pg.test.ts' -not -path '*/node_modules/*' | sort)

case "$tier" in
  pure) files=("${pure[@]}") ;;
  pg) files=("${pg[@]}") ;;
  all) files=("${pure[@]}" "${pg[@]}") ;;
  *) echo "usage: test/run.sh [pure|pg|all]" >&2; exit 2 ;;
esac

if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found for tier '$tier'" >&2
  exit 1
fi

exec node --import tsx --test --test-reporter=tap --test-concurrency=1 "${files[@]}"
