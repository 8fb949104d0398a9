#!/usr/bin/env bash
# Installs everything the test suite needs and runs all of it: type check, then every test file in
# one node:test run (so the closing summary covers the whole suite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh test
# Prepares the host for every OCI runtime (crun needs its cgroup layout workaround on hybrid hosts);
# idempotent, prints each step.
node packages/executor/bin/executor.js install oci

# The database tests run on PostgreSQL and on embedded PGlite. Use the server at 127.0.0.1:5432
# when one answers; otherwise start a private throwaway cluster.
if [ -z "${SANDFLEET_TEST_PG_URL:-}" ]; then
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
    export SANDFLEET_TEST_PG_URL=postgres://postgres@127.0.0.1:5432/test
  else
    source scripts/start-test-postgres.sh
  fi
fi
echo "PostgreSQL for tests: $SANDFLEET_TEST_PG_URL"

npx tsc -p tsconfig.json --noEmit
echo "type check passed"

# Every test file is also checked for what it leaves behind (processes, network namespaces,
# cgroups, mounts, temp directories): see packages/test-helpers/src/leaks.ts.
mapfile -t files < <(find packages -name '*.test.ts' -not -path '*/node_modules/*' | sort)
exec node --import tsx --import ./packages/test-helpers/src/leak-check-hook.ts --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
