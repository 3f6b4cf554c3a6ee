#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis answer on 127.0.0.1; starts them when they are installed but down, and says
# clearly which one is missing otherwise. Used by the quickstart, `npm test` and CI.
set -euo pipefail
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -q -h "$PGHOST" -p "$PGPORT" 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

if ! command -v pg_isready >/dev/null 2>&1 && ! ls /etc/postgresql >/dev/null 2>&1; then
  echo "gpulab: PostgreSQL is not installed. Install it (Debian/Ubuntu: apt-get install postgresql) and re-run." >&2
  exit 1
fi
if ! pg_up; then
  echo "gpulab: PostgreSQL is down; starting it"
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    for v in $(ls /etc/postgresql); do pg_ctlcluster --skip-systemctl-redirect "$v" main start || true; done
  elif command -v systemctl >/dev/null 2>&1; then
    systemctl start postgresql || true
  fi
  for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  pg_up || { echo "gpulab: could not start PostgreSQL on $PGHOST:$PGPORT" >&2; exit 1; }
fi

if ! command -v redis-server >/dev/null 2>&1 && ! redis_up; then
  echo "gpulab: Redis is not installed. Install it (Debian/Ubuntu: apt-get install redis-server) and re-run." >&2
  exit 1
fi
if ! redis_up; then
  echo "gpulab: Redis is down; starting it"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null
  for _ in $(seq 1 30); do redis_up && break; sleep 0.5; done
  redis_up || { echo "gpulab: could not start Redis on 127.0.0.1:$REDIS_PORT" >&2; exit 1; }
fi
echo "gpulab: PostgreSQL and Redis are up"
