#!/bin/sh
# The mongo image's contract as the operator uses it, on FerretDB: data in /data/db, port 27017,
# and MONGO_INITDB_ROOT_USERNAME/PASSWORD becoming an authenticated root user (FerretDB's
# experimental "new authentication", which stores users in the SQLite backend and speaks
# SCRAM-SHA-256 like MongoDB). Without them the server runs without authentication, as
# `mongo` does. Telemetry is off: sandboxes have no route out.
set -eu
export FERRETDB_HANDLER=sqlite
export FERRETDB_SQLITE_URL="${FERRETDB_SQLITE_URL:-file:/data/db/}"
export FERRETDB_LISTEN_ADDR="${FERRETDB_LISTEN_ADDR:-:27017}"
export FERRETDB_STATE_DIR="${FERRETDB_STATE_DIR:-/data/db}"
export FERRETDB_TELEMETRY=disable
export FERRETDB_LOG_LEVEL="${FERRETDB_LOG_LEVEL:-warn}"
# Its debug handler (pprof, metrics) stays on loopback inside the pod.
export FERRETDB_DEBUG_ADDR="${FERRETDB_DEBUG_ADDR:-127.0.0.1:8088}"
if [ -n "${MONGO_INITDB_ROOT_USERNAME:-}" ]; then
  : "${MONGO_INITDB_ROOT_PASSWORD:?MONGO_INITDB_ROOT_PASSWORD must be set with MONGO_INITDB_ROOT_USERNAME}"
  export FERRETDB_TEST_ENABLE_NEW_AUTH=true
  export FERRETDB_SETUP_USERNAME="$MONGO_INITDB_ROOT_USERNAME"
  export FERRETDB_SETUP_PASSWORD="$MONGO_INITDB_ROOT_PASSWORD"
  export FERRETDB_SETUP_DATABASE="${MONGO_INITDB_DATABASE:-admin}"
fi
unset MONGO_INITDB_ROOT_PASSWORD
# A dataset loaded at image build time (preload.ts, e.g. retail@1-standard): copied into a new
# data directory as EPREUVE_PRELOAD_DATABASE, so the seed Job finds its migrations applied instead
# of inserting every document through this server. Never over an existing database (a restarted
# pod keeps what the candidate did); a name this image lacks leaves the load to the seed Job.
if [ -n "${EPREUVE_PRELOAD_DATASET:-}" ]; then
  preload_dir=${EPREUVE_PRELOAD_DIR:-/usr/share/epreuve/preload}
  data_dir=${FERRETDB_SQLITE_URL#file:}
  data_dir=${data_dir%%\?*}
  target="${data_dir%/}/${EPREUVE_PRELOAD_DATABASE:-sandbox}.sqlite"
  case "$EPREUVE_PRELOAD_DATASET${EPREUVE_PRELOAD_DATABASE:-}" in
    *[!a-zA-Z0-9@_-]*)
      echo "preload: ignoring EPREUVE_PRELOAD_DATASET/EPREUVE_PRELOAD_DATABASE: only letters, digits, @, _ and - are allowed" >&2 ;;
    *)
      if [ -e "$target" ]; then
        echo "preload: $target exists; not replaced" >&2
      elif [ -f "$preload_dir/$EPREUVE_PRELOAD_DATASET.sqlite" ]; then
        cp "$preload_dir/$EPREUVE_PRELOAD_DATASET.sqlite" "$target.tmp"
        mv "$target.tmp" "$target"
        echo "preload: $EPREUVE_PRELOAD_DATASET copied to $target" >&2
      else
        echo "preload: this image has no $EPREUVE_PRELOAD_DATASET; the seed Job loads it" >&2
      fi ;;
  esac
fi
exec ferretdb "$@"
