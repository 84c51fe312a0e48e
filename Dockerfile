# One image for every steadyfit process: `steadyfit api`, `steadyfit worker`, `steadyfit migrate`.
# PyPI's torch wheels for Linux carry the CUDA runtime, so the worker sees the GPU that
# docker-compose reserves for it; on a CPU-only host the same image trains on the CPU.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STEADYFIT_DATA_DIR=/var/lib/steadyfit

RUN useradd --create-home --uid 10001 steadyfit \
    && mkdir -p /var/lib/steadyfit/artifacts \
    && chown -R steadyfit /var/lib/steadyfit

WORKDIR /app
# Dependencies first, so code changes do not reinstall torch.
COPY pyproject.toml README.md ./
RUN mkdir core service workers steadyfit migrations \
    && touch core/__init__.py service/__init__.py workers/__init__.py steadyfit/__init__.py migrations/__init__.py \
    && pip install . \
    && pip uninstall -y steadyfit
COPY core ./core
COPY service ./service
COPY workers ./workers
COPY steadyfit ./steadyfit
COPY migrations ./migrations
RUN pip install --no-deps .

USER steadyfit
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)" || exit 1
CMD ["steadyfit", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
