#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 before the test suite runs.
# Starts them when they are installed but stopped; fails with a clear message when absent.
set -u
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}

pg_up() { pg_isready -h "$PG_HOST" -p "$PG_PORT" -q 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 1; done; return 1; }

if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is stopped: starting it."
    for version in $(ls /etc/postgresql); do
      pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null || true
    done
    wait_for pg_up || { echo "ERROR: PostgreSQL is installed but did not start on $PG_HOST:$PG_PORT." >&2; exit 1; }
  else
    echo "ERROR: PostgreSQL is not installed (no pg_ctlcluster). The tests need PostgreSQL on $PG_HOST:$PG_PORT" >&2
    echo "       (install the Debian package 'postgresql', or set TEST_DATABASE_URL)." >&2
    exit 1
  fi
fi

if ! redis_up; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "Redis is stopped: starting it."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
    wait_for redis_up || { echo "ERROR: Redis is installed but did not start on 127.0.0.1:$REDIS_PORT." >&2; exit 1; }
  else
    echo "ERROR: Redis is not installed (no redis-server). The tests need Redis on 127.0.0.1:$REDIS_PORT" >&2
    echo "       (install the Debian package 'redis-server')." >&2
    exit 1
  fi
fi
echo "PostgreSQL and Redis are up."
