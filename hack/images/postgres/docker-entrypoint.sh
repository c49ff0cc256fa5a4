#!/usr/bin/env bash
# The official postgres image's contract, reduced to what Épreuve's operator relies on: on an
# empty $PGDATA, initdb with $POSTGRES_USER (default postgres) and $POSTGRES_PASSWORD, create
# $POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql|*.sh; then exec postgres listening on all
# addresses with scram-sha-256 for remote clients. Runs as any non-root uid; never as root.
set -euo pipefail
if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
[ "$(id -u)" -ne 0 ] || { echo "docker-entrypoint: refusing to run PostgreSQL as root" >&2; exit 1; }
: "${PGDATA:?PGDATA must be set}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD is required (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  pwfile=$(mktemp)
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
  initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=trust \
    ${POSTGRES_INITDB_ARGS:-} >/dev/null
  rm -f "$pwfile"
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  # A server on the Unix socket only while initialising, as the official image does.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -c unix_socket_directories=/var/run/postgresql" -w start
  if [ "$db" != postgres ]; then
    # psql quotes the name (:"db"); variables are interpolated on stdin, not in -c.
    psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d postgres -q --set db="$db" \
      <<<'CREATE DATABASE :"db";'
  fi
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) echo "docker-entrypoint: running $f"; . "$f" ;;
      *.sql) echo "docker-entrypoint: running $f"; psql -v ON_ERROR_STOP=1 -h /var/run/postgresql -U "$user" -d "$db" -q -f "$f" ;;
      *) ;;
    esac
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "docker-entrypoint: PostgreSQL initialised in $PGDATA (database $db, user $user)"
fi
shift || true
exec postgres -c listen_addresses='*' -c unix_socket_directories=/var/run/postgresql "$@"
