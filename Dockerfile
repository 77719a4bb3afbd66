# The commitbench image for the migrate service and the runner. The default base has no
# torch (migrations and Grafana need none); the runner builds it FROM a CUDA torch image
# (BASE_IMAGE build argument, see docker-compose.yml).
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

# git: the runner checks out commits in worktrees.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole context less .dockerignore: pyproject.toml, README.md and every directory
# pyproject maps into the package (service/, migrations/, benches/).
COPY . .
RUN pip install --no-cache-dir . \
    && useradd --create-home --uid 10001 commitbench

USER commitbench
ENTRYPOINT ["commitbench"]
