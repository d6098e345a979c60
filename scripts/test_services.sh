#!/usr/bin/env bash
# Prepares a fresh machine for the test suite: PostgreSQL, Redis, Chromium and GNU gettext,
# installed and started only where missing. Safe to run again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "test services: not root and no sudo; install PostgreSQL, Redis and Chromium yourself" >&2
  fi
fi

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
# GNU gettext: scripts/check_translations.py extracts the marked strings with it.
command -v xgettext >/dev/null 2>&1 || need+=(gettext)
if [ ${#need[@]} -gt 0 ]; then
  echo "test services: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# PostgreSQL
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  cluster=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
    $SUDO pg_createcluster "$ver" main >/dev/null
    cluster="$ver main"
  fi
  # shellcheck disable=SC2086
  $SUDO pg_ctlcluster --skip-systemctl-redirect $cluster start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
# A fresh machine only accepts passwords on 127.0.0.1.
if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -tAc "select 1" >/dev/null 2>&1; then
  $SUDO su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\""
fi

# The database the suite's DATABASE_URL names (pytest creates test_enrollment beside it).
if ! PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='enrollment'" | grep -q 1; then
  PGPASSWORD=postgres psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE enrollment"
fi

# Redis
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 0.5; done
fi
echo "test services: PostgreSQL, Redis and Chromium ready"
