# The test stack's PostgreSQL 15, from Debian's packages, on port PGPORT of the host's network.
# Built by deploy/docker/build.sh.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 jiazheng \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin jiazheng
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint
ENV HOME=/tmp
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]
