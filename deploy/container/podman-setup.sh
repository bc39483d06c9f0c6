#!/usr/bin/env bash
# Make this machine ready to build and run the image: podman with runc, and the Containerfile's
# base image. Idempotent; run as root. Used by `nox -s container` (and container_arm64/armv7).
#
#   deploy/container/podman-setup.sh              # the machine's own architecture
#   deploy/container/podman-setup.sh arm64        # also arm64, through qemu-user-static
#   deploy/container/podman-setup.sh armhf        # also armv7 (Debian's armhf)
#
# 1. Installs podman, runc and debootstrap with apt-get when podman is missing (and
#    qemu-user-static + binfmt-support for another architecture, registered by hand when no
#    systemd does it).
# 2. Installs containers.conf (beside this script: runc, lower ulimits, cgroupfs, file events)
#    as /etc/containers/containers.conf when that file does not exist yet.
# 3. Makes the base image resolve: kept if it is there, else pulled; where no registry can be
#    reached, a Debian bookworm stand-in is built with debootstrap (minbase, slimmed like the
#    official -slim images, with the machine's extra CA certificates from
#    /usr/local/share/ca-certificates so pip works behind an intercepting proxy) and tagged with
#    the exact FROM name. For other architectures each stand-in is tagged NAME-ARCH and all of
#    them are joined under NAME with `podman manifest`, so one FROM name resolves per --platform.
#
# BASE overrides the image name (default: the Containerfile's BASE).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
BASE="${BASE:-docker.io/library/debian:bookworm-slim}"
SUITE=bookworm
NATIVE="$(dpkg --print-architecture)"
export DEBIAN_FRONTEND=noninteractive

say() { echo "podman-setup: $*" >&2; }

# Debian architecture -> qemu binary suffix and OCI arch/variant.
qemu_name() { case "$1" in arm64) echo aarch64 ;; armhf) echo arm ;; amd64) echo x86_64 ;; *) echo "$1" ;; esac; }
oci_arch() { case "$1" in armhf) echo arm ;; *) echo "$1" ;; esac; }
oci_variant() { case "$1" in armhf) echo v7 ;; arm64) echo v8 ;; *) echo "" ;; esac; }

foreign=()
for arch in "$@"; do
  [ "$arch" = "$NATIVE" ] || foreign+=("$arch")
done

# --- 1. packages -----------------------------------------------------------------------------
packages=()
command -v podman >/dev/null || packages+=(podman)
command -v runc >/dev/null || packages+=(runc)
command -v debootstrap >/dev/null || packages+=(debootstrap)
# podman kube play (nox -s fleet) builds its pause image around catatonit.
[ -x /usr/bin/catatonit ] || [ -x /usr/libexec/podman/catatonit ] || packages+=(catatonit)
if [ ${#foreign[@]} -gt 0 ]; then
  command -v update-binfmts >/dev/null || packages+=(binfmt-support)
  for arch in "${foreign[@]}"; do
    command -v "qemu-$(qemu_name "$arch")-static" >/dev/null || packages+=(qemu-user-static)
  done
fi
if [ ${#packages[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing: ${packages[*]}; install them with your system's package manager"
    exit 1
  fi
  say "installing ${packages[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# --- 2. configuration ------------------------------------------------------------------------
if [ ! -e /etc/containers/containers.conf ]; then
  say "installing /etc/containers/containers.conf"
  install -D -m 0644 "$HERE/containers.conf" /etc/containers/containers.conf
fi

if [ ${#foreign[@]} -gt 0 ]; then
  if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  for arch in "${foreign[@]}"; do
    name="qemu-$(qemu_name "$arch")"
    [ -e "/proc/sys/fs/binfmt_misc/$name" ] || update-binfmts --enable "$name"
  done
fi

# --- 3. base image ---------------------------------------------------------------------------
mirror() {
  local sources=/etc/apt/sources.list.d/debian.sources
  if [ -e "$sources" ]; then
    awk '/^URIs:/{print $2; exit}' "$sources"
  else
    awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list
  fi
}

# bootstrap ARCH TAG: a debootstrap minbase of bookworm for ARCH, slimmed, imported as TAG.
bootstrap() {
  local arch="$1" tag="$2" rootfs started
  started=$(date +%s)
  rootfs="$(mktemp -d /var/tmp/sepia-stt-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' RETURN
  say "building a $SUITE $arch stand-in for $tag with debootstrap"
  debootstrap --arch="$arch" --variant=minbase "$SUITE" "$rootfs" "$(mirror)" >/dev/null
  # What the official -slim images leave out, and keep out of later installs.
  mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  echo 'APT::Install-Recommends "false";' >"$rootfs/etc/apt/apt.conf.d/docker-no-recommends"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log \
    "$rootfs"/var/cache/debconf/*-old
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    mkdir -p "$rootfs/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  fi
  local variant
  variant="$(oci_variant "$arch")"
  tar -C "$rootfs" -c . | podman import --quiet --arch "$(oci_arch "$arch")" \
    ${variant:+--variant "$variant"} --change 'CMD ["bash"]' - "$tag" >/dev/null
  say "$tag ready in $(($(date +%s) - started)) s"
}

try_pull() {
  # A registry that cannot be reached fails at once (DNS); bound it anyway.
  timeout 300 podman pull --quiet "$@" >/dev/null 2>&1
}

if [ ${#foreign[@]} -eq 0 ]; then
  if podman image exists "$BASE"; then
    say "$BASE is there"
  elif try_pull "$BASE"; then
    say "pulled $BASE"
  else
    bootstrap "$NATIVE" "$BASE"
  fi
  exit 0
fi

# Several architectures. With a registry, podman build --platform pulls each by itself.
if ! podman manifest exists "$BASE" 2>/dev/null && try_pull --platform "linux/$(oci_arch "${foreign[0]}")" "$BASE"; then
  say "pulled $BASE; builds pull their platform's image"
  exit 0
fi
if podman image exists "$BASE" && ! podman manifest exists "$BASE" 2>/dev/null; then
  # A single-architecture base (the native stand-in): keep it as NAME-NATIVE, free the name.
  podman tag "$BASE" "$BASE-$NATIVE"
  podman untag "$BASE" "$BASE"
fi
for arch in "$NATIVE" "${foreign[@]}"; do
  podman image exists "$BASE-$arch" || bootstrap "$arch" "$BASE-$arch"
done
podman manifest exists "$BASE" 2>/dev/null || podman manifest create "$BASE" >/dev/null
listed="$(podman manifest inspect "$BASE")"
for arch in "$NATIVE" "${foreign[@]}"; do
  digest="$(podman image inspect --format '{{.Digest}}' "$BASE-$arch")"
  if ! grep -q "$digest" <<<"$listed"; then
    podman manifest add "$BASE" "containers-storage:$BASE-$arch" >/dev/null
    say "$BASE: added $arch"
  fi
done
