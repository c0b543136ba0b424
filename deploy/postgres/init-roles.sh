#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory.
# bulwark_app may read and write Bulwark's tables but only insert audit events (the grants
# are made by `bulwark db upgrade`, migration 0006); bulwark_service is the replicas' login.
set -eu
password="$(cat /run/secrets/pg_service_password)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v service_password="$password" <<'SQL'
CREATE ROLE bulwark_app NOLOGIN;
CREATE ROLE bulwark_service LOGIN IN ROLE bulwark_app PASSWORD :'service_password';
SQL
