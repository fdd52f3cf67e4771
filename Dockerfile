# The Usage service: the page built by Node, served with the API by a slim Python runtime.
#   docker build -t usage .
#   docker run --rm -e DATABASE_URL=postgresql://… usage migrate     # once per release
#   docker run -e DATABASE_URL=postgresql://… -p 8000:8000 usage      # the service

FROM node:20.20-bookworm-slim AS page
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    USAGE_PAGE_DIR=/app/page
WORKDIR /app
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml ./
COPY api/ api/
COPY migrations/ migrations/
# Editable: the migrations stay beside the package, where `usage-api migrate` finds them.
RUN pip install --no-cache-dir --no-deps --editable . \
    && useradd --system --uid 10001 --no-create-home usage
COPY --from=page /src/frontend/dist page/
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["usage-api"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
