# ailedger node image.
#
#   docker compose up --build                                    (a registry is reachable)
#   scripts/docker-base && scripts/docker-wheels \
#     && BASE_IMAGE=ailedger-base:local docker compose up --build     (offline)
#
# The build stage installs ailedger into a venv: from the host-built wheelhouse
# docker/wheels/ with no network when it holds wheels (scripts/docker-wheels), else
# from PyPI. The final stage is the base image plus that venv and an unprivileged user;
# the wheelhouse, pip and the sources stay behind in the build stage.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# Names this stage's image, which the classic builder keeps (untagged) after the build,
# so that scripts/compose-e2e can remove it with the image it built.
LABEL org.ailedger.stage=build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
# Dependencies (and the build backend) first, in a layer of their own, so that a change
# to the sources does not reinstall them. `docker/wheel[s]` matches the wheelhouse when
# there is one and nothing otherwise; pip then reads the package index instead.
COPY pyproject.toml docker/wheel[s] /wheelhouse/
RUN if ls /wheelhouse/*.whl >/dev/null 2>&1; then \
        echo "--no-index --find-links /wheelhouse" >/wheelhouse/pip-args; \
        echo "installing from the wheelhouse, offline"; \
    else \
        : >/wheelhouse/pip-args; \
        echo "no wheelhouse: installing from the package index"; \
    fi \
 && python3 -c "import tomllib; p = tomllib.load(open('/wheelhouse/pyproject.toml', 'rb')); print(*p['project']['dependencies'], *p['build-system']['requires'], sep='\n')" \
        >/wheelhouse/requirements.txt \
 && python3 -m venv /opt/ailedger \
 && /opt/ailedger/bin/pip install $(cat /wheelhouse/pip-args) -r /wheelhouse/requirements.txt

WORKDIR /src
COPY pyproject.toml README.m[d] ./
COPY consensus ./consensus
COPY node ./node
RUN /opt/ailedger/bin/pip install $(cat /wheelhouse/pip-args) --no-deps --no-build-isolation . \
 && /opt/ailedger/bin/pip check \
 && /opt/ailedger/bin/pip uninstall --yes --quiet pip setuptools \
 && /opt/ailedger/bin/ailedger --help >/dev/null

FROM ${BASE_IMAGE}
ARG UID=10001
# A fixed unprivileged uid owns /data; named volumes copy that ownership on first use.
RUN echo "ailedger:x:${UID}:${UID}:ailedger:/data:/usr/sbin/nologin" >>/etc/passwd \
 && echo "ailedger:x:${UID}:" >>/etc/group \
 && mkdir -p /data && chown "${UID}:${UID}" /data && chmod 0750 /data
COPY --from=build /opt/ailedger /opt/ailedger
# Inside the container the API listens on every interface of the container's network;
# publishing on the host is the compose file's business (127.0.0.1 by default).
ENV PATH=/opt/ailedger/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    AILEDGER_NETWORK=devnet \
    AILEDGER_HOST=0.0.0.0 \
    AILEDGER_PORT=8000 \
    AILEDGER_DATA_DIR=/data
USER ${UID}:${UID}
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# Python, not curl: slim images have no curl.
HEALTHCHECK --interval=5s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('AILEDGER_PORT', '8000'), timeout=4)"]
# Every setting comes from AILEDGER_* variables (or flags after the image name). Peers
# must reach us by a name, not 0.0.0.0: without AILEDGER_LISTEN_URL the container's
# hostname is used, which the engine's DNS resolves on the container's networks (that is
# what lets `--scale peer=N` replicas be found).
ENTRYPOINT ["/bin/sh", "-c", "export AILEDGER_LISTEN_URL=\"${AILEDGER_LISTEN_URL:-http://${HOSTNAME}:${AILEDGER_PORT}}\"; exec ailedger node \"$@\"", "ailedger"]
