# One image for every steadyfit process: `steadyfit api`, `steadyfit worker`, `steadyfit migrate`.
#
# Flavours (build arguments):
#   TORCH=cuda (the default): PyPI's torch for Linux, which carries the CUDA runtime, so the worker sees the GPU
#     docker-compose reserves for it; on a CPU-only host the same image trains on the CPU.
#   TORCH=cpu: the CPU build of the torch release constraints.txt pins, from TORCH_CPU_INDEX: a much smaller
#     image for CPU-only hosts.
#   --target api: the API alone, without torch (the API never imports it), for API-only hosts.
#   BASE: the Python 3.11 image to start from (scripts/test-image builds a local stand-in for python:3.11-slim).
ARG BASE=python:3.11-slim
FROM ${BASE} AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STEADYFIT_DATA_DIR=/var/lib/steadyfit

RUN useradd --create-home --uid 10001 steadyfit \
    && mkdir -p /var/lib/steadyfit/artifacts \
    && chown -R steadyfit /var/lib/steadyfit

WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
# Empty packages, so that the dependencies install (and stay cached) before any code is copied.
RUN mkdir core service workers steadyfit migrations \
    && touch core/__init__.py service/__init__.py workers/__init__.py steadyfit/__init__.py migrations/__init__.py

FROM base AS worker
# When given: PIP_FIND_LINKS, a folder of wheels pip also installs from; PIP_CERT, the CA bundle of a proxy
# between the build and the package index (scripts/test-image mounts both from the host).
ARG PIP_FIND_LINKS
ARG PIP_CERT
ARG TORCH=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
RUN if [ "$TORCH" = cpu ]; then \
        pip install -c constraints.txt ${TORCH_CPU_INDEX:+--extra-index-url "$TORCH_CPU_INDEX"} . ; \
    else \
        pip install . ; \
    fi \
    && pip uninstall -y steadyfit
COPY core ./core
COPY service ./service
COPY workers ./workers
COPY steadyfit ./steadyfit
COPY migrations ./migrations
RUN pip install --no-deps . && rm -rf /app/*

USER steadyfit
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)" || exit 1
CMD ["steadyfit", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

# The API without torch: the project's dependencies but torch (the API never imports it; tests prove it).
FROM base AS api
ARG PIP_FIND_LINKS
ARG PIP_CERT
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith('torch')))" > /tmp/api-requirements.txt \
    && pip install -c constraints.txt -r /tmp/api-requirements.txt \
    && rm /tmp/api-requirements.txt
COPY core ./core
COPY service ./service
COPY workers ./workers
COPY steadyfit ./steadyfit
COPY migrations ./migrations
RUN pip install --no-deps . && rm -rf /app/*

USER steadyfit
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz').status != 200)" || exit 1
CMD ["steadyfit", "api", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]

# The default target (`docker build .`, compose's `build: .`): every process, as before.
FROM worker
