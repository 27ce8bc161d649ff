# prowtrace container image: `prowtrace serve` (Pub/Sub push endpoint on $PORT) by default,
# `prowtrace pull` by overriding the arguments (Cloud Run worker pool: args = ["pull"]).
#
# Build:  docker build -t IMAGE .   or   gcloud builds submit --tag IMAGE .   (docs/DEPLOY.md)
#
# The build stage installs through scripts/install.sh, the same script CI runs into a scratch
# venv (tests/deploy/test_dockerfile.py), so the image gets exactly what uv.lock pins and CI has checked.
# The runtime stage is distroless: Python and its libraries, no shell, no package manager, no
# compiler, and a non-root user.
#
# Base images: Debian 13 (trixie) in both stages; Debian 12 has left regular security support.
# They are referenced by tag, not yet by digest: the machine this was written on reaches no
# container registry, so no digest could be read, and an invented one would break the build.
# To pin (and to refresh later), read the current digests and append them to the two FROM lines:
#   docker buildx imagetools inspect debian:13-slim --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/python3-debian13:nonroot \
#     --format '{{json .Manifest.Digest}}'
# giving e.g. FROM debian:13-slim@sha256:<digest> AS build (docs/DEPLOY.md, "The image").

FROM debian:13-slim AS build

# Debian 13's python3 is the very interpreter the distroless runtime ships (/usr/bin/python3.13),
# so the venv built here runs unchanged there. uv is pinned; it only lives in this stage.
ARG UV_VERSION=0.13.9
RUN apt-get update \
    && apt-get install --yes --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --no-cache-dir "uv==${UV_VERSION}"

ENV PATH=/opt/uv/bin:$PATH \
    UV_PYTHON=/usr/bin/python3.13 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY scripts/install.sh scripts/install.sh
COPY processor processor
RUN scripts/install.sh /opt/prowtrace/venv


# checkov:skip=CKV_DOCKER_2:Cloud Run ignores HEALTHCHECK; terraform/ sets startup and liveness probes on /readyz and /healthz, and the same image also runs `pull`, which serves no HTTP
FROM gcr.io/distroless/python3-debian13:nonroot

# Same path as in the build stage: the venv's scripts carry absolute shebangs.
COPY --from=build /opt/prowtrace/venv /opt/prowtrace/venv

ENV PATH=/opt/prowtrace/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# distroless's "nonroot" user, numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080

# Exec form: prowtrace is PID 1 and receives SIGTERM itself (it shuts down gracefully on it).
ENTRYPOINT ["/opt/prowtrace/venv/bin/prowtrace"]
CMD ["serve"]
