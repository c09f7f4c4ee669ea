# ssehub as a container: `docker build -t ssehub .` then
#   docker run -p 8000:8000 -v ssehub-data:/data -e SSEHUB_JWT_KEY=... ssehub
# Every option of `ssehub serve` is an SSEHUB_* variable (docs/deploy.md).
FROM python:3.12-slim

# The hub and its optional parts for operators: JWTs and the Redis store.
WORKDIR /src
COPY pyproject.toml README.md LICENSE* ./
COPY src ./src
RUN pip install --no-cache-dir '.[jwt,redis,hooks]' && rm -rf /src

# Not root; history (SQLite) in a volume the user owns.
RUN useradd --system --uid 10001 --home-dir /data --create-home ssehub
USER ssehub
WORKDIR /data
VOLUME /data

# Listen on every interface of the container; the SQLite store in the volume.
ENV SSEHUB_HOST=0.0.0.0 \
    SSEHUB_PORT=8000 \
    SSEHUB_STORE=sqlite:/data/ssehub.db \
    PYTHONUNBUFFERED=1
EXPOSE 8000

# Alive means /healthz answers (readiness, /readyz, is for the load balancer).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SSEHUB_PORT', '8000'), timeout=2)"]

# SIGTERM: stop accepting, end streams within --grace (5 s), exit 0.
STOPSIGNAL SIGTERM
CMD ["ssehub", "serve"]
