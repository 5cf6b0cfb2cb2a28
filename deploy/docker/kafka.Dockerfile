# The test stack's Kafka: the same single-node KRaft broker as deploy/local (the broker jars from
# Maven Central, its server properties), on the ports KAFKA_PORT and KAFKA_CONTROLLER_PORT of the
# host's network. Built by deploy/docker/build.sh.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
# Slim Debian images lack the man folder the JRE's post-install step writes to.
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 jiazheng \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin jiazheng
COPY app /app
WORKDIR /app
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1
USER 10001:10001
ENTRYPOINT ["python3", "-m", "deploy.docker.kafka_entrypoint"]
