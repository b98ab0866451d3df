# syntax=docker/dockerfile:1
#
# One image for every signalbox service; the first argument picks the command:
#   docker run IMAGE ingest | evaluator | dispatcher | scheduler | topics apply
#
# Stages: build (wheels) -> base (runtime, shared) -> dev (+ aiosmtpd, for
# `signalbox smtp-capture`) and runtime (the default: last stage, no dev deps).
#   docker build -t signalbox .               # runtime
#   docker build --target dev -t signalbox:dev .

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- build
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# pyproject maps services/ -> signalbox and schemas/ -> signalbox.schemas (setup.py
# derives the package list from it) and names README.md as the readme: these five
# are the whole build context.
COPY pyproject.toml setup.py README.md ./
COPY schemas/ schemas/
COPY services/ services/
# Wheels for signalbox and all its dependencies (all binary or pure Python, so
# no compiler is needed), plus aiosmtpd for the dev stage. Its version range is
# read from pyproject's `dev` extra so it is stated in one place.
RUN python -c "import tomllib; dev = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dev']; print('\n'.join(d for d in dev if d.startswith('aiosmtpd')))" \
        > /dev-requirements.txt \
    && pip wheel --wheel-dir /wheels . -r /dev-requirements.txt \
    && mv /dev-requirements.txt /wheels/

# ---------------------------------------------------------------- base
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    SIGNALBOX_BIND_HOST=0.0.0.0 \
    EVALUATOR_DATA_DIR=/var/lib/signalbox/evaluator
# A numeric, non-root user so Kubernetes' runAsNonRoot can verify it. The directories
# signalbox writes exist and are its own, so a new named volume mounted there (compose)
# starts writable by it.
RUN groupadd --system --gid 10001 signalbox \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/signalbox \
        --no-create-home --shell /usr/sbin/nologin signalbox \
    && install -d -o 10001 -g 10001 /var/lib/signalbox /var/lib/signalbox/evaluator \
        /var/lib/signalbox/outbox /var/lib/signalbox/keys
# Install from the wheels only (--no-index): the bind mount keeps them out of
# the image's layers. `signalbox` alone, so the dev extra stays out.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels signalbox
# The commit built, for signalbox_build_info (after the install: a new commit does not
# invalidate the layers above):  docker build --build-arg SIGNALBOX_COMMIT=$(git rev-parse --short HEAD) .
ARG SIGNALBOX_COMMIT=""
ENV SIGNALBOX_COMMIT=${SIGNALBOX_COMMIT}
WORKDIR /var/lib/signalbox
USER 10001:10001
# ingest (HTTP API), evaluator, dispatcher, scheduler: /healthz /readyz /metrics
EXPOSE 8080 8081 8082 8083
ENTRYPOINT ["signalbox"]
CMD ["--help"]

# ---------------------------------------------------------------- dev
# Development SMTP capture: stores every message it receives under /mail.
FROM base AS dev
USER root
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels -r /wheels/dev-requirements.txt \
    && install -d -o 10001 -g 10001 /mail
USER 10001:10001
EXPOSE 2525
CMD ["smtp-capture", "--host", "0.0.0.0", "--port", "2525", "--maildir", "/mail"]

# ---------------------------------------------------------------- runtime (default)
FROM base AS runtime
LABEL org.opencontainers.image.title="signalbox" \
      org.opencontainers.image.description="Self-hosted action framework for subscription businesses, on Kafka." \
      org.opencontainers.image.licenses="Apache-2.0"
