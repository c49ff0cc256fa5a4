#!/usr/bin/env bash
# The official postgres image's contract, reduced to what Épreuve's operator relies on: on an
# empty $PGDATA, initdb with $POSTGRES_USER (default postgres) and $POSTGRES_PASSWORD, create
# $POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql|*.sh; then exec postgres listening on all
# addresses with scram-sha-256 for remote clients. Runs as any non-root uid; never as root.
# Épreuve's addition: EPREUVE_PRELOAD_DATASET (e.g. retail@1-standard) names a data directory made
# at image build (preload.ts: initdb as this script runs it, the dataset loaded by the seeder's
# code, no role or password); on an empty $PGDATA it is copied in instead of initdb when it was
# made for this $POSTGRES_USER and $POSTGRES_DB, and the superuser's password is then set. Anything
# else (no such directory, another user or database, initdb arguments, init scripts) initdb's as
# before, with a line saying why; the seed Job loads the data then.
set -euo pipefail
if [ "${1:-postgres}" != postgres ]; then exec "$@"; fi
[ "$(id -u)" -ne 0 ] || { echo "docker-entrypoint: refusing to run PostgreSQL as root" >&2; exit 1; }
: "${PGDATA:?PGDATA must be set}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}

mkdir -p "$PGDATA"
chmod 700 "$PGDATA" 2>/dev/null || true

# preload_source: prints the preloaded data directory to copy in, or nothing (saying why on stderr).
preload_source() {
  local name=$EPREUVE_PRELOAD_DATASET dir=${EPREUVE_PRELOAD_DIR:-/usr/share/epreuve/preload}
  case "$name" in
    *[!a-zA-Z0-9@_-]* | '')
      echo "preload: ignoring EPREUVE_PRELOAD_DATASET: only letters, digits, @, _ and - are allowed" >&2
      return ;;
  esac
  if [ ! -f "$dir/$name/preload.env" ] || [ ! -s "$dir/$name/pgdata/PG_VERSION" ]; then
    echo "preload: this image has no $name; initdb, and the seed Job loads it" >&2
    return
  fi
  local want_user want_db
  want_user=$(sed -n 's/^user=//p' "$dir/$name/preload.env")
  want_db=$(sed -n 's/^database=//p' "$dir/$name/preload.env")
  if [ "$user" != "$want_user" ] || [ "$db" != "$want_db" ]; then
    echo "preload: $name was made for user $want_user and database $want_db, not $user and $db; initdb instead" >&2
  elif [ -n "${POSTGRES_INITDB_ARGS:-}" ]; then
    echo "preload: POSTGRES_INITDB_ARGS is set; initdb instead of $name" >&2
  elif compgen -G '/docker-entrypoint-initdb.d/*' >/dev/null; then
    echo "preload: /docker-entrypoint-initdb.d has scripts; initdb instead of $name" >&2
  elif [[ "${POSTGRES_PASSWORD:-}" == *$'\n'* ]]; then
    echo "preload: POSTGRES_PASSWORD has a line break; initdb instead of $name" >&2
  else
    echo "$dir/$name/pgdata"
  fi
}

if [ -e "$PGDATA/.epreuve-preloading" ]; then
  # A copy, password or pg_hba.conf interrupted before its end: start it over.
  find "$PGDATA" -mindepth 1 -delete
fi
source=
if [ ! -s "$PGDATA/PG_VERSION" ] && [ -n "${EPREUVE_PRELOAD_DATASET:-}" ]; then
  source=$(preload_source)
fi
if [ ! -s "$PGDATA/PG_VERSION" ] && [ -n "$source" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$auth" != trust ]; then
    echo "docker-entrypoint: POSTGRES_PASSWORD is required (or POSTGRES_HOST_AUTH_METHOD=trust)" >&2
    exit 1
  fi
  : >"$PGDATA/.epreuve-preloading"
  # PG_VERSION last: a directory without it is never taken for a complete one.
  for f in "$source"/*; do
    if [ "${f##*/}" != PG_VERSION ]; then cp -a "$f" "$PGDATA/"; fi
  done
  cp -a "$source/PG_VERSION" "$PGDATA/"
  if [ -n "${POSTGRES_PASSWORD:-}" ]; then
    # Single-user mode, as the superuser, no listener: the password never reaches a command line
    # or a log (stdin; quotes doubled, standard_conforming_strings keeps backslashes literal; no
    # statement logged with an error). It exits 0 whatever happened: the SELECT says it worked.
    quoted_user=${user//\"/\"\"}
    quoted_pw=${POSTGRES_PASSWORD//\'/\'\'}
    quoted_name=${user//\'/\'\'}
    out=$(printf "ALTER ROLE \"%s\" PASSWORD '%s'\nSELECT 'epreuve-password-set' FROM pg_authid WHERE rolname = '%s' AND rolpassword IS NOT NULL\n" \
      "$quoted_user" "$quoted_pw" "$quoted_name" |
      postgres --single -D "$PGDATA" -c log_min_messages=fatal -c log_min_error_statement=panic postgres 2>&1)
    if [[ "$out" != *'"epreuve-password-set"'* ]]; then
      echo "docker-entrypoint: could not set the password of $user in the preloaded $EPREUVE_PRELOAD_DATASET" >&2
      find "$PGDATA" -mindepth 1 -delete # not left as a server nobody can log in to: the next start redoes it
      exit 1
    fi
  fi
  printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  rm -f "$PGDATA/.epreuve-preloading"
  echo "docker-entrypoint: PostgreSQL preloaded in $PGDATA from $EPREUVE_PRELOAD_DATASET (database $db, user $user)"
fi
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
