#!/usr/bin/env bash
# Installs what vitrine needs on Debian/Ubuntu, and only what is missing:
# a Vulkan loader and, where no GPU driver is present, Mesa's software Vulkan
# driver (lavapipe), plus the Debian packages named as arguments. Checks for a
# Rust toolchain and gives the Vulkan loader a private XDG_RUNTIME_DIR.
#
# Source it and call the function with explicit arguments:
#   source scripts/deps.sh && vitrine_deps [PACKAGE WHY]...
# (a sourced script sees its caller's arguments, so this file reads none itself).
# Idempotent; safe to run on every invocation.

vitrine_deps() {
  local need=() why=()
  have_icd() { compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; }
  # grep without -q: reading all input avoids SIGPIPE failing the pipeline under pipefail.
  if ! ldconfig -p 2>/dev/null | grep -F 'libvulkan.so.1' >/dev/null; then
    need+=(libvulkan1); why+=("libvulkan1 (the Vulkan loader)")
  fi
  if ! have_icd; then
    need+=(mesa-vulkan-drivers); why+=("mesa-vulkan-drivers (no Vulkan driver found: Mesa's software GPU, lavapipe)")
  fi
  while [ $# -ge 2 ]; do
    dpkg -s "$1" >/dev/null 2>&1 || { need+=("$1"); why+=("$1 ($2)"); }
    shift 2
  done
  if [ ${#need[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
      echo "vitrine: please install: ${why[*]}" >&2
      return 1
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    local IFS=';'
    echo "vitrine: installing with apt-get: ${why[*]}" >&2
    unset IFS
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi

  if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null; then
    echo "vitrine: a Rust toolchain is needed (https://rustup.rs), then run this again" >&2
    return 1
  fi

  # The Vulkan loader warns when XDG_RUNTIME_DIR is unusable; give it one
  # private directory per user, made once and reused (not a new one per run).
  if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
    XDG_RUNTIME_DIR="${TMPDIR:-/tmp}/vitrine-runtime-$(id -u)"
    mkdir -p -m 700 "$XDG_RUNTIME_DIR"
    export XDG_RUNTIME_DIR
  fi
}
