FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN useradd --create-home connector && chown -R connector /app
USER connector
EXPOSE 8000
CMD ["gunicorn", "connector.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "30"]
