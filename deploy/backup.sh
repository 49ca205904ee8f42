#!/bin/sh
# Backup of a deployment: the database (pg_dump, custom format) and the uploaded files (tar), in
# a new folder DEST/instruction-<UTC time>, with their SHA-256; DEST/latest points to it.
#   deploy/backup.sh DEST          (docker-compose.yml: `docker compose run --rm backup`)
# Environment: DATABASE_URL (as the app reads it) and UPLOAD_FOLDER.
# Restore with deploy/restore.sh (docs/deploy.md, Backups).
set -eu
dest=${1:?usage: deploy/backup.sh DEST}
: "${DATABASE_URL:?DATABASE_URL is not set}"
: "${UPLOAD_FOLDER:?UPLOAD_FOLDER is not set}"
# libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://).
url=$(printf '%s' "$DATABASE_URL" | sed 's|^postgresql+[a-z0-9]*://|postgresql://|')
name="instruction-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$dest/$name.part"
# The database first, then the files: a file written meanwhile is an orphan in the archive
# (harmless), never a row without its file. Not during the nightly purge (03:00, Paris).
pg_dump --format=custom --compress=6 --file "$dest/$name.part/database.dump" "$url"
mkdir -p "$UPLOAD_FOLDER"
tar -C "$UPLOAD_FOLDER" --exclude='./.*.part' -czf "$dest/$name.part/uploads.tar.gz" .
(cd "$dest/$name.part" && sha256sum database.dump uploads.tar.gz > SHA256SUMS)
mv "$dest/$name.part" "$dest/$name"
ln -sfn "$name" "$dest/latest"
echo "$dest/$name"
