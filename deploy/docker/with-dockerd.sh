#!/usr/bin/env bash
# Runs a command with a Docker engine of its own (CI: `deploy/docker/with-dockerd.sh make
# test-containers`). Installs Debian's docker.io and debootstrap when they are missing (as root),
# starts dockerd with its socket, state and images under .build/dockerd, points DOCKER_HOST at it for the
# command, and stops that dockerd by its pid afterwards, whatever the command's outcome.
set -euo pipefail
cd "$(dirname "$0")/../.."

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ ${#missing[@]} -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

home=$PWD/.build/dockerd
mkdir -p "$home"
dockerd -H "unix://$home/docker.sock" --pidfile "$home/dockerd.pid" --exec-root "$home/exec" \
	--data-root "$home/data" >"$home/dockerd.log" 2>&1 &
pid=$!
stop_dockerd() {
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	# dockerd leaves its network namespace mounted; without this `rm -rf .build` fails.
	umount "$home/exec/netns/default" 2>/dev/null || true
}
trap stop_dockerd EXIT
export DOCKER_HOST=unix://$home/docker.sock

for _ in $(seq 120); do
	docker info >/dev/null 2>&1 && break
	kill -0 "$pid" 2>/dev/null || { cat "$home/dockerd.log"; exit 1; }
	sleep 1
done
docker info >/dev/null

"$@"
