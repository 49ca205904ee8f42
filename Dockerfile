FROM python:3.11-slim
WORKDIR /app
# WeasyPrint (PDF letters): Pango, HarfBuzz and a font, as `make pdf-deps` installs them.
RUN apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
    libharfbuzz-subset0 fonts-dejavu-core fontconfig && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md wsgi.py ./
COPY instruction ./instruction
COPY worker ./worker
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
# Editable install: the app finds templates/, static/ and migrations/ beside the package.
RUN pip install --no-cache-dir -e . gunicorn
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
