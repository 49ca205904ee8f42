# The application image (docker-compose.yml builds it for web, worker, beat, migrate and the tools).
# The code is installed from a wheel (not editable) into site-packages, without the test extras;
# templates/, static/ and migrations/ sit in /app, which INSTRUCTION_HOME names.

# --- build: wheels of the project and of its dependencies ----------------------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY instruction ./instruction
COPY worker ./worker
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- runtime -------------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm
# WeasyPrint (PDF letters): Pango, HarfBuzz and a font, as `make pdf-deps` installs them;
# postgresql-client (15, as the server) for deploy/backup.sh and deploy/restore.sh.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz-subset0 fonts-dejavu-core fontconfig postgresql-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels instruction && rm -rf /wheels
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin instruction
WORKDIR /app
COPY wsgi.py ./
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY deploy/backup.sh deploy/restore.sh ./deploy/
# Writable by the app only: its instance folder, the uploaded files and the built exports (named
# volumes in compose take this ownership when they are created).
RUN mkdir -p /app/instance /data/uploads /data/exports \
    && chown instruction:instruction /app/instance /data/uploads /data/exports
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INSTRUCTION_HOME=/app \
    INSTRUCTION_ENV=production \
    UPLOAD_FOLDER=/data/uploads \
    EXPORT_FOLDER=/data/exports
USER instruction
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "wsgi:app"]
