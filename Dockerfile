FROM python:3.11-slim
WORKDIR /app
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
