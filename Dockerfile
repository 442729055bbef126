# The production image: the connector only (no sandbox, Flask, tests or dev tools), run as a
# non-root user, static files collected at build time, gunicorn configured by gunicorn.conf.py.
# Build: docker build -t bitrix24-xero-connector .   Run: see docker-compose.yml.

# --- build: install the runtime requirements into a virtualenv, collect static files ---------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
WORKDIR /app
# .dockerignore keeps sandbox/, tests/, bench/, scripts/ and local files out of the context.
COPY . .
# collectstatic loads the production settings, which refuse to start without real keys: throwaway
# ones, generated here and never stored in the image. REDIS_URL keeps the settings from creating
# the embedded mode's folders.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(64))')" \
    FIELD_ENCRYPTION_KEY="$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" \
    BITRIX24_CLIENT_ID=collectstatic REDIS_URL=redis://collectstatic:6379/0 \
    python manage.py collectstatic --noinput -v 0 \
 && python -m compileall -q /app

# --- runtime ---------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    DEBUG=false \
    LOG_FORMAT=json \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin connector
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=root:root /app /app
WORKDIR /app
USER connector
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-m", "connector.probe", "health"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "connector.wsgi:application"]
