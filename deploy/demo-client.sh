#!/bin/sh
# The compose demo client: one INSERT every 200 ms through a pgward proxy, printing
# each outcome, so a failover shows up as a short pause (or a clear SQLSTATE).
set -u
psql -v ON_ERROR_STOP=1 -qc 'CREATE TABLE IF NOT EXISTS demo_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())' \
  || echo "demo: could not create demo_writes yet; retrying in the loop"
while true; do
  if out=$(psql -qtAc 'INSERT INTO demo_writes DEFAULT VALUES RETURNING id' 2>&1); then
    echo "$(date -u +%H:%M:%S.%3N) ok id=$out"
  else
    echo "$(date -u +%H:%M:%S.%3N) error: $out"
    psql -qc 'CREATE TABLE IF NOT EXISTS demo_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())' >/dev/null 2>&1
  fi
  sleep 0.2
done
