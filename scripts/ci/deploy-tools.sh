#!/usr/bin/env bash
# CI only: the tools the deploy tests need: podman set up for this machine with a stand-in for the node:<major>-slim base image, and systemd-analyze.
#
# No image registry is reachable from CI, so the Dockerfile's base (build argument NODE_IMAGE) is replaced
# by an image built here: a Debian minbase root file system (debootstrap, from the mirror apt already
# uses), the official Node.js binary (the registry's node-linux-<arch> package) and npm, with a `node`
# user of uid 1000 as in the official image. It is kept in podman's storage and rebuilt only when a new
# Node.js release of the line appears. test/deploy/container.test.ts finds it by its name, $IMAGE:<major>-slim.
set -euo pipefail
shopt -s inherit_errexit

NODE_MAJOR=${NODE_MAJOR:-24}
NPM_MAJOR=11
IMAGE=localhost/sentry-tunnel-ci/node

# Debian's podman, with runc (crun refuses this machine's hybrid cgroups) and debootstrap.
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends podman runc debootstrap
fi

# test/deploy/systemd.test.ts checks the unit file with systemd-analyze (Debian's systemd package).
if ! command -v systemd-analyze >/dev/null; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd
fi

# podman's defaults do not fit here: no systemd to manage cgroups or keep a journal, and its default
# ulimits (nofile 1048576) exceed this machine's hard limits, which root cannot raise here (no
# CAP_SYS_RESOURCE). podman runs conmon with nproc at most kernel.pid_max, so that bounds nproc too.
ulimit_entry() { [ "$2" = unlimited ] || printf '"%s=%s:%s", ' "$1" "$2" "$2"; }
nproc=$(ulimit -Hu)
pid_max=$(cat /proc/sys/kernel/pid_max)
if [ "$nproc" = unlimited ] || [ "$nproc" -gt "$pid_max" ]; then nproc=$pid_max; fi
ulimits="$(ulimit_entry nofile "$(ulimit -Hn)")$(ulimit_entry nproc "$nproc")"
conf=/etc/containers/containers.conf.d/50-sentry-tunnel-ci.conf
wanted="# Written by sentry-tunnel's scripts/ci/deploy-tools.sh.
[containers]
default_ulimits = [${ulimits%, }]
log_driver = \"k8s-file\"

[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
"
if [ "$(cat "$conf" 2>/dev/null)" != "${wanted%$'\n'}" ]; then
  mkdir -p "$(dirname "$conf")"
  printf '%s' "$wanted" >"$conf"
fi

case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "no Node.js package for $(uname -m)" >&2; exit 1 ;;
esac
version=$(npm view "node-linux-$arch@$NODE_MAJOR" version --json | tr -d '[]", ' | grep . | sort -V | tail -1)
[[ $version =~ ^$NODE_MAJOR\.[0-9]+\.[0-9]+$ ]] || { echo "no Node.js $NODE_MAJOR release found: '$version'" >&2; exit 1; }

if podman image exists "$IMAGE:$version-slim"; then
  podman tag "$IMAGE:$version-slim" "$IMAGE:$NODE_MAJOR-slim"
  echo "base image $IMAGE:$NODE_MAJOR-slim (Node.js $version) is cached"
  exit 0
fi

# The mirror and release apt already uses (deb822 .sources, or a one-line sources.list).
mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ { print $2; exit }')
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print ($2 ~ /^\[/ ? $3 : $2); exit }' /etc/apt/sources.list 2>/dev/null)
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
[ -n "$mirror" ] && [ -n "$suite" ] || { echo "cannot tell which Debian mirror and release apt uses" >&2; exit 1; }

start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
echo "building $IMAGE:$version-slim: Debian $suite minbase from $mirror, Node.js $version, npm $NPM_MAJOR"
debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -30 "$work/debootstrap.log" >&2
  exit 1
}
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/*

(cd "$work" && npm pack --silent "node-linux-$arch@$version" "npm@$NPM_MAJOR" >/dev/null)
tar xzf "$work/node-linux-$arch-$version.tgz" -C "$work" package/bin/node
install -m 0755 "$work/package/bin/node" "$root/usr/local/bin/node"
rm -rf "$work/package"
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar xzf "$work"/npm-"$NPM_MAJOR".*.tgz -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

chroot "$root" groupadd --gid 1000 node
chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node

# Only this stand-in trusts the host's CA bundle (the registry may be reached through an intercepting
# proxy here); the user-facing Dockerfile never does.
changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["node"]')
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/sentry-tunnel-ci/ca-certificates.crt"
  changes+=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/sentry-tunnel-ci/ca-certificates.crt')
fi

tar -C "$root" --numeric-owner -c . | podman import --quiet "${changes[@]}" - "$IMAGE:$version-slim" >/dev/null
podman tag "$IMAGE:$version-slim" "$IMAGE:$NODE_MAJOR-slim"
# Older releases of the line are no longer used by anything.
podman images --format '{{.Repository}}:{{.Tag}}' | grep "^$IMAGE:$NODE_MAJOR\.[0-9.]*-slim$" | grep -v ":$version-slim$" | xargs -r podman rmi >/dev/null || true
echo "built $IMAGE:$NODE_MAJOR-slim (Node.js $version) in $((SECONDS - start)) s"
