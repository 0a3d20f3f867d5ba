#!/usr/bin/env bash
# Build and run timserver's container image on a machine that cannot reach Docker Hub: a Docker
# daemon of our own (own socket, data root, exec root and pidfile), a local debian:bookworm-slim
# made with debootstrap from the Debian mirror apt uses here, then `docker build` of the Dockerfile.
# README's "Run it in a container" and tests/container/test_container.py run exactly this.
#
#   scripts/docker-local.sh install   Debian's docker.io and debootstrap, when missing (root)
#   scripts/docker-local.sh start     the daemon, unless it runs; prints DOCKER_HOST=...
#   scripts/docker-local.sh base      debian:bookworm-slim, unless the daemon has it
#   scripts/docker-local.sh build     the image ($TIMSERVER_IMAGE, default timserver:local)
#   scripts/docker-local.sh all       the four above, in order
#   scripts/docker-local.sh stop      the daemon, by the PID in its pidfile
#   scripts/docker-local.sh env       prints DOCKER_HOST=... (eval it to use `docker` yourself)
#
# Kept between runs in $TIMSERVER_DOCKER_CACHE (~/.cache/timserver-docker): the daemon's images
# and layers, and the base system's tarball, so a second run takes seconds. Every step that may
# wait has a time limit: nothing here hangs.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TIMSERVER_DOCKER_CACHE:-$HOME/.cache/timserver-docker}
# The socket's path must stay short (108 bytes for a Unix socket): the run folder is in /tmp.
RUN=${TIMSERVER_DOCKER_RUN:-/tmp/timserver-docker-$(id -u)}
SOCK=$RUN/docker.sock
PIDFILE=$RUN/dockerd.pid
IMAGE=${TIMSERVER_IMAGE:-timserver:local}
BASE=debian:bookworm-slim
SUITE=bookworm
# A bridge of our own, on an address range unlikely to be used here (--bip): `docker run -p`
# works through docker-proxy, without iptables rules or IP forwarding on the host.
BRIDGE_IP=${TIMSERVER_DOCKER_BIP:-10.213.117.1/24}
export DOCKER_HOST=unix://$SOCK

# `dk SECONDS ARGS...`: Debian's docker client (the same version as its daemon: another
# `docker` earlier in PATH may be a newer client that wants the buildx plugin for `docker
# build`), killed after SECONDS.
dk() {
  local limit=$1 bin=/usr/bin/docker
  shift
  [ -x "$bin" ] || bin=docker
  timeout "$limit" "$bin" "$@"
}

say() { echo "docker-local: $*" >&2; }

running() {
  [ -S "$SOCK" ] && dk 10 version >/dev/null 2>&1
}

install() {
  if command -v dockerd >/dev/null && command -v debootstrap >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    say "dockerd or debootstrap is missing and only root can install them (apt-get install docker.io debootstrap)"
    return 3
  fi
  say "installing Debian's docker.io and debootstrap"
  timeout 300 apt-get update -q
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
    docker.io debootstrap
}

start() {
  if running; then
    say "the daemon already runs (pid $(cat "$PIDFILE" 2>/dev/null || echo '?'))"
    echo "DOCKER_HOST=$DOCKER_HOST"
    return 0
  fi
  mkdir -p "$RUN" "$CACHE/data-root"
  rm -f "$SOCK"
  # --iptables=false --ip-forward=false: no firewall rule or sysctl of the host is touched. Builds
  # use the host's network (`docker build --network host`); running containers get our bridge.
  setsid dockerd --host "$DOCKER_HOST" --data-root "$CACHE/data-root" --exec-root "$RUN/exec" \
    --pidfile "$PIDFILE" --iptables=false --ip-forward=false --ip-masq=false \
    --bip "$BRIDGE_IP" >"$RUN/dockerd.log" 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 1 120); do
    if running; then
      say "daemon started (pid $pid, log $RUN/dockerd.log)"
      echo "DOCKER_HOST=$DOCKER_HOST"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "dockerd exited; its log ($RUN/dockerd.log) ends with:"
      tail -n 5 "$RUN/dockerd.log" >&2
      return 4
    fi
    sleep 0.5
  done
  say "dockerd did not answer within 60 s; stopping it"
  kill "$pid" 2>/dev/null || true
  return 4
}

stop() {
  [ -f "$PIDFILE" ] || { say "no daemon of ours runs"; left_behind; return 0; }
  local pid
  pid=$(cat "$PIDFILE")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 1 60); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "daemon $pid still runs after 30 s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    else
      say "daemon $pid stopped"
    fi
  fi
  rm -f "$PIDFILE"
  left_behind
}

# What a stopped daemon leaves: mounts under our run folder (its network namespace's handle),
# and its bridge when it is ours (it carries our address). The next start makes them again.
left_behind() {
  local mounted
  for mounted in $(awk -v run="$RUN/" 'index($2, run) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true
  done
  if ip -4 addr show docker0 2>/dev/null | grep -q "inet ${BRIDGE_IP} "; then
    ip link delete docker0 2>/dev/null || true
  fi
}

# The mirror apt uses on this machine (deb822 sources first, then the one-line format).
mirror() {
  local found
  found=$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' \
    | grep -v -- '-security' | head -n1 || true)
  if [ -z "$found" ]; then
    found=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | grep -v -- '-security' | awk '{for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' \
      | head -n1 || true)
  fi
  echo "${found:-http://deb.debian.org/debian}"
}

# The host's CA bundle: HTTPS from inside a build may be re-signed by this machine's network,
# so pip in the build must trust what the host trusts. It goes into the local base image, and
# /etc/pip.conf points pip at it; the Dockerfile stays as it is anywhere else.
host_ca() {
  for f in "${SSL_CERT_FILE:-}" "${PIP_CERT:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$f" ] && [ -f "$f" ]; then echo "$f"; return 0; fi
  done
  return 1
}

base() {
  if dk 30 image inspect "$BASE" >/dev/null 2>&1; then
    say "$BASE is there"
    return 0
  fi
  local tarball="$CACHE/$SUITE-minbase.tar"
  if [ ! -s "$tarball" ]; then
    local url work
    url=$(mirror)
    work=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    say "debootstrap --variant=minbase $SUITE from $url (about 2 minutes)"
    if ! timeout 900 debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$url" \
        >"$CACHE/debootstrap.log" 2>&1; then
      say "debootstrap failed; the end of $CACHE/debootstrap.log:"
      tail -n 5 "$CACHE/debootstrap.log" >&2
      rm -rf "$work"
      return 5
    fi
    # What a slim image leaves out: downloaded packages, package lists, documentation.
    rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
      "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/*
    tar -C "$work/rootfs" --numeric-owner -cf "$tarball.part" .
    mv "$tarball.part" "$tarball"
    rm -rf "$work"
  fi
  local ca layer
  layer=$(mktemp -d)
  trap 'rm -rf "$layer"' RETURN
  cp "$tarball" "$layer/rootfs.tar"
  if ca=$(host_ca); then
    mkdir -p "$layer/etc/ssl/certs"
    cp "$ca" "$layer/etc/ssl/certs/host-ca-bundle.pem"
    printf '[global]\ncert = /etc/ssl/certs/host-ca-bundle.pem\n' >"$layer/etc/pip.conf"
    tar -C "$layer" --owner=0 --group=0 -rf "$layer/rootfs.tar" ./etc/ssl/certs/host-ca-bundle.pem ./etc/pip.conf
  fi
  say "importing $BASE"
  dk 300 import --change 'CMD ["bash"]' "$layer/rootfs.tar" "$BASE" >/dev/null
}

build() {
  say "building $IMAGE"
  # --network host: the build's apt and pip reach the mirror and PyPI through the host (our
  # daemon gives containers no route out).
  dk 900 build --network host --build-arg "BASE=$BASE" -t "$IMAGE" "$ROOT"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  base) base ;;
  build) build ;;
  all) install && start && base && build ;;
  env) echo "DOCKER_HOST=$DOCKER_HOST" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
