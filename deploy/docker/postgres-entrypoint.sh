#!/bin/sh
# A fresh cluster whose superuser is POSTGRES_USER with POSTGRES_PASSWORD (scram), then the server
# on 127.0.0.1:PGPORT, configured as deploy/local/stack.py configures the local stack's.
set -eu
bin=/usr/lib/postgresql/15/bin
data=/tmp/pgdata
pwfile=$(mktemp)
printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
"$bin/initdb" -D "$data" -U "${POSTGRES_USER:-jiazheng}" --pwfile="$pwfile" --auth=scram-sha-256 \
	-E UTF8 --locale=C.UTF-8 >/dev/null
rm -f "$pwfile"
exec "$bin/postgres" -D "$data" -c listen_addresses=127.0.0.1 -c port="${PGPORT:-5432}" \
	-c unix_socket_directories='' -c max_connections=300 -c shared_buffers=256MB -c log_lock_waits=on
