#!/usr/bin/env bash
# Make sure a PostgreSQL server runs on 127.0.0.1:5432 with a `babelfuse` role (password `babelfuse`,
# CREATEDB) and a database named $1 (default `babelfuse`); print its SQLAlchemy URL on stdout.
# Used by `.ci/run` (tests) and `make server` (the shared MLflow tracking server) when
# BABELFUSE_DB_URL is not set. Installs Debian's `postgresql` package when it is missing (needs root
# and apt-get). Everything it does is said on stderr.
set -euo pipefail
# stdout carries only the URL: everything else (pg_ctlcluster says "Removed stale pid file." on stdout)
# goes to stderr.
exec 3>&1 1>&2
db="${1:-babelfuse}"
say() { echo "postgres.sh: $*" >&2; }

if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing Debian's postgresql package (apt-get)"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    say "PostgreSQL is not installed and this is not root with apt-get: install it, or set BABELFUSE_DB_URL"
    exit 1
  fi
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
if ! su postgres -c "pg_isready -q -h 127.0.0.1" 2>/dev/null; then
  say "starting PostgreSQL $ver (cluster main)"
  pg_ctlcluster "$ver" main start 3>&- || service postgresql start 3>&- || true
fi
for _ in $(seq 1 30); do su postgres -c "pg_isready -q -h 127.0.0.1" && break; sleep 1; done
su postgres -c "pg_isready -q -h 127.0.0.1" || { say "PostgreSQL did not come up"; exit 1; }
su postgres -c "psql -qtAc \"DO \\\$\\\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='babelfuse') THEN CREATE ROLE babelfuse LOGIN PASSWORD 'babelfuse' CREATEDB; END IF; END \\\$\\\$;\"" >&2
if [ "$(su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='$db'\"")" != 1 ]; then
  say "creating database $db (owner babelfuse)"
  su postgres -c "createdb -O babelfuse $db" >&2
fi
echo "postgresql+psycopg2://babelfuse:babelfuse@127.0.0.1:5432/$db" >&3
