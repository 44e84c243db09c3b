# computewatch: the bot (Discord or console), its HTTP API, feeds and digest, in one process.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Only what the package needs: tests, benchmarks and local databases stay out of the image.
COPY pyproject.toml README.md ./
COPY events ./events
COPY store ./store
COPY bot ./bot
RUN pip install . && rm -rf /app/build

# A non-root user that owns the data directory; a named volume mounted there inherits it.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin computewatch \
    && mkdir -p /data \
    && chown computewatch:computewatch /data
USER computewatch
WORKDIR /data

# The API must listen on all interfaces inside the container to be reachable through the
# published port; docker-compose.yml publishes it on the host's 127.0.0.1 only.
ENV COMPUTEWATCH_DB=/data/computewatch.duckdb \
    COMPUTEWATCH_API_HOST=0.0.0.0 \
    COMPUTEWATCH_API_PORT=8750 \
    MPLCONFIGDIR=/tmp/matplotlib
VOLUME /data
EXPOSE 8750

# Slim images have no curl: the standard library asks /health (urlopen fails on non-2xx).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8750/health', timeout=4)"]

CMD ["computewatch", "run"]
