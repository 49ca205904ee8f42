#!/bin/sh
# Restore a backup of deploy/backup.sh into an EMPTY database and an empty upload folder.
#   deploy/restore.sh BACKUP_DIR   (docker-compose.yml: `docker compose run --rm restore`)
# Environment: DATABASE_URL (the new, empty database) and UPLOAD_FOLDER.
# Refuses a database that already has tables, or a folder that already has files: a restore never
# mixes with live data. Then run the migrations (`instruction db upgrade`, the migrate service)
# and `instruction audit verify`.
set -eu
backup=${1:?usage: deploy/restore.sh BACKUP_DIR}
: "${DATABASE_URL:?DATABASE_URL is not set}"
: "${UPLOAD_FOLDER:?UPLOAD_FOLDER is not set}"
url=$(printf '%s' "$DATABASE_URL" | sed 's|^postgresql+[a-z0-9]*://|postgresql://|')
(cd "$backup" && sha256sum --check --quiet SHA256SUMS) || {
  echo "restore: $backup is incomplete or damaged (SHA256SUMS do not match)" >&2; exit 1; }
tables=$(psql --no-psqlrc --tuples-only --no-align --dbname "$url" \
  --command "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
if [ "$tables" != "0" ]; then
  echo "restore: the database already holds $tables tables; restore into an empty database" >&2
  exit 1
fi
mkdir -p "$UPLOAD_FOLDER"
if [ -n "$(ls -A "$UPLOAD_FOLDER")" ]; then
  echo "restore: $UPLOAD_FOLDER is not empty; restore into an empty folder" >&2
  exit 1
fi
# One transaction: a failed restore leaves the database empty, not half filled.
pg_restore --exit-on-error --single-transaction --no-owner --no-privileges --dbname "$url" \
  "$backup/database.dump"
tar -C "$UPLOAD_FOLDER" -xzf "$backup/uploads.tar.gz"
echo "restored $backup"
