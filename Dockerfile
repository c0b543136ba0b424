# Bulwark: the same install as the README's quick start, on a slim base, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BULWARK_HOST=0.0.0.0 \
    BULWARK_PORT=8080 \
    BULWARK_DATA_DIR=/var/lib/bulwark

RUN groupadd --system bulwark && useradd --system --gid bulwark --home /var/lib/bulwark bulwark \
    && mkdir -p /var/lib/bulwark /etc/bulwark && chown bulwark:bulwark /var/lib/bulwark

WORKDIR /opt/bulwark
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
RUN pip install .

USER bulwark
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz').status == 200 else 1)"
CMD ["bulwark", "serve"]
