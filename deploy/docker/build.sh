#!/usr/bin/env bash
# `make images`: the service image and the test stack's Kafka and PostgreSQL images, built with no
# image registry. BASE_IMAGE (default: a Debian bookworm made here with debootstrap and `docker
# import`) is the base of all three; its python3 is 3.11. The service's Python packages go in from a
# wheelhouse made on this host, so the builds need no HTTPS to the package index.
set -euo pipefail
cd "$(dirname "$0")/../.."

BUILD=.build/docker
PYTHON=${PYTHON:-.venv/bin/python}
BASE_IMAGE=${BASE_IMAGE:-jiazheng-base:bookworm}
TAG=${TAG:-latest}

# Debian bookworm, minimal, with python3 and venv: built once, then reused.
base_image() {
	docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
	local rootfs
	rootfs=$(mktemp -d)
	debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs"
	rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
	tar -C "$rootfs" -c . | docker import --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE"
	rm -rf "$rootfs"
}

# The build context of each image: only what that image needs.
context() {
	rm -rf "$BUILD/$1" && mkdir -p "$BUILD/$1" && echo "$BUILD/$1"
}

service_image() {
	local ctx
	ctx=$(context service)
	"$PYTHON" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
		>"$ctx/requirements.txt"
	cp constraints.txt "$ctx/constraints.txt"
	mkdir -p "$BUILD/wheelhouse"
	"$PYTHON" -m pip wheel --quiet --wheel-dir "$BUILD/wheelhouse" -c constraints.txt -r "$ctx/requirements.txt"
	cp -r "$BUILD/wheelhouse" "$ctx/wheelhouse"
	mkdir -p "$ctx/app"
	# The CLI too (`python -m cli`: `jiazheng dlq`, the RPC commands), with the local stack's modules
	# it imports (it looks there for what its options and JZ_* settings do not name).
	tar -c --exclude=tests --exclude=__pycache__ libs services gen cli \
		deploy/__init__.py deploy/local/__init__.py deploy/local/stack.py deploy/local/services.py \
		deploy/local/supervisor.py | tar -C "$ctx/app" -x
	docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -f deploy/docker/Dockerfile -t "jiazheng-service:$TAG" "$ctx"
}

kafka_image() {
	local ctx
	ctx=$(context kafka)
	"$PYTHON" -c 'from deploy.local.stack import ensure_kafka_libs; ensure_kafka_libs()'
	mkdir -p "$ctx/app/.build" "$ctx/app/deploy/local/kafka" "$ctx/app/deploy/docker"
	cp -r .build/kafka-libs "$ctx/app/.build/kafka-libs"
	cp deploy/__init__.py "$ctx/app/deploy/"
	cp deploy/local/__init__.py deploy/local/stack.py "$ctx/app/deploy/local/"
	cp deploy/local/kafka/log4j2.yaml "$ctx/app/deploy/local/kafka/"
	cp deploy/docker/__init__.py deploy/docker/kafka_entrypoint.py "$ctx/app/deploy/docker/"
	docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -f deploy/docker/kafka.Dockerfile -t "jiazheng-kafka:$TAG" "$ctx"
}

postgres_image() {
	local ctx
	ctx=$(context postgres)
	cp deploy/docker/postgres-entrypoint.sh "$ctx/"
	docker build --quiet --build-arg BASE_IMAGE="$BASE_IMAGE" -f deploy/docker/postgres.Dockerfile -t "jiazheng-postgres:$TAG" "$ctx"
}

# A BASE_IMAGE given from outside is used as it is (pulled by docker build where a registry answers).
[ "$BASE_IMAGE" != jiazheng-base:bookworm ] || base_image
# Arguments name some of the images (service, kafka, postgres); none means all three.
images=("$@")
[ $# -gt 0 ] || images=(service kafka postgres)
for image in "${images[@]}"; do "${image}_image"; done
docker image ls --filter 'reference=jiazheng-*'
