#!/usr/bin/env bash
# Installs what vitrine needs on Debian/Ubuntu, and only what is missing:
# a Vulkan loader and, where no GPU driver is present, Mesa's software Vulkan
# driver (lavapipe), plus any Debian packages named as arguments.
# Idempotent; safe to run on every invocation.
set -euo pipefail

need_apt=()
have_icd() { compgen -G '/usr/share/vulkan/icd.d/*.json' >/dev/null || compgen -G '/etc/vulkan/icd.d/*.json' >/dev/null; }
# grep without -q: reading all input avoids SIGPIPE failing the pipeline under pipefail.
ldconfig -p 2>/dev/null | grep -F 'libvulkan.so.1' >/dev/null || need_apt+=(libvulkan1)
have_icd || need_apt+=(mesa-vulkan-drivers)
for extra in "$@"; do
  dpkg -s "$extra" >/dev/null 2>&1 || need_apt+=("$extra")
done

if [ ${#need_apt[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    echo "vitrine: please install a Vulkan driver and loader (missing: ${need_apt[*]})" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "vitrine: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "vitrine: a Rust toolchain is needed (https://rustup.rs), then run this again" >&2
  exit 1
fi

# The Vulkan loader warns when XDG_RUNTIME_DIR is unusable; give it one.
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 700 "$XDG_RUNTIME_DIR"
fi
