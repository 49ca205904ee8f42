FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md wsgi.py ./
COPY instruction ./instruction
COPY worker ./worker
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir . gunicorn
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
