#!/usr/bin/env bash
# Installs, idempotently, everything needed to build, test and demo this
# project on a fresh Debian 12 machine. Safe to run again: packages already
# present are not reinstalled, and nothing here starts a system service.
set -euo pipefail

APT_PACKAGES=(
  # build: the two C libraries the adapters wrap
  libcurl4-openssl-dev libssh2-1-dev libsqlite3-dev pkg-config
  # test bed: real servers the tests start on loopback
  openssh-server openssh-client openssl etcd-server etcd-client
  prometheus prometheus-pushgateway python3 python3-pip
  # a K3s server's SQLite datastore, checked and backed up with the real sqlite3
  sqlite3
  # maintenance windows are read in their time zones, as the C library reads them
  tzdata
  # the real-apt node: a Debian root (debootstrap), a signed repository (apt-ftparchive, gpg)
  debootstrap apt-utils gpg
  # checks and benchmarks
  shellcheck jq wrk curl procps time
  # the CLI's question and live view under a real terminal
  tmux
  # the status page in a real browser: headless Chromium driven over WebDriver
  chromium chromium-driver
)
# deploy/ validation (Kubernetes schemas offline, JSON Schema); the API fuzzer for the OpenAPI document
PIP_PACKAGES=(pyyaml kubernetes-validate==1.37.0 jsonschema==4.26.0 schemathesis==4.32.5)

log() { printf 'setup: %s\n' "$*" >&2; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)

if ((${#missing[@]} > 0)); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  log "installing: ${missing[*]}"
  # Debian packages such as etcd-server, prometheus and openssh-server start
  # their daemons on install; the tests start their own instances on free
  # ports, so forbid service starts for the duration of the install.
  policy=/usr/sbin/policy-rc.d
  placed_policy=false
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    placed_policy=true
  fi
  cleanup_policy() { if $placed_policy; then $SUDO rm -f "$policy"; fi; }
  trap cleanup_policy EXIT
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  cleanup_policy
  trap - EXIT
else
  log "Debian packages already installed"
fi

missing_pip=()
for pkg in "${PIP_PACKAGES[@]}"; do
  python3 -m pip show --quiet "${pkg%%==*}" >/dev/null 2>&1 || missing_pip+=("$pkg")
done
if ((${#missing_pip[@]} > 0)); then
  log "installing from PyPI: ${missing_pip[*]}"
  python3 -m pip install --quiet --disable-pip-version-check "${missing_pip[@]}"
fi

command -v swift >/dev/null 2>&1 || {
  log "swift is not on PATH: this project needs the Swift 6 toolchain (/opt/swift/usr/bin)"
  exit 1
}
log "ready"
