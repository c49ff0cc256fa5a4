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
exec ferretdb "$@"
