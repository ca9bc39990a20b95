#!/usr/bin/env bash
# setup.sh: installs what webinfer needs, idempotently; fast when done.
#
#   scripts/setup.sh serve   Go modules only (what `make serve` needs)
#   scripts/setup.sh test    also the browsers and npm packages of `make test`
#
# Debian 12 (bookworm) packages, from Debian's own archive:
#   chromium chromium-driver          Blink, WebGPU on SwiftShader
#   firefox-esr mesa-vulkan-drivers   Gecko, WebGPU on lavapipe
#   libwebkitgtk-6.0-4 webkit2gtk-driver xvfb xauth
#                                     WebKit (MiniBrowser) under a virtual X server
#   bible-kjv                         the King James Bible (public domain), the
#                                     default model's training text
#   clang-14 lld-14 wabt              the browser CPU path's WASM SIMD kernels
#                                     (shim/simd128: make check rebuilds them
#                                     and compares with the committed module)
# npm packages: exactly those of package-lock.json (npm ci), without optional
# packages (node-llama-cpp's CUDA and Vulkan builds: only its CPU build,
# @node-llama-cpp/linux-x64, is a direct dependency) and without install
# scripts (node-llama-cpp's would try to download or build llama.cpp).
# llama.cpp's source (for its tokenizer test vocabularies) comes from the
# git bundle inside node-llama-cpp, cloned into .cache/llama.cpp.
# Each step says what failed and why; nothing is downloaded outside the
# package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-test}
say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

command -v go >/dev/null || die "go is not on PATH (install Go 1.26 from go.dev, or /usr/local/go/bin)"

# Go modules, including the vugugen tool pinned in go.mod.
if ! go mod download 2>/tmp/webinfer-setup-go.log; then
  cat /tmp/webinfer-setup-go.log >&2
  die "go mod download (is the Go module proxy reachable?)"
fi

[ "$mode" = "serve" ] && exit 0

apt_packages="chromium chromium-driver firefox-esr mesa-vulkan-drivers libwebkitgtk-6.0-4 webkit2gtk-driver xvfb xauth bible-kjv postgresql clang-14 lld-14 wabt"
missing=""
for p in $apt_packages; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install:$missing"
    sudo="sudo"
  fi
  say "installing Debian packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q >/tmp/webinfer-setup-apt.log 2>&1 || { tail -20 /tmp/webinfer-setup-apt.log >&2; die "apt-get update"; }
  # shellcheck disable=SC2086
  $sudo apt-get install -y -q --no-install-recommends $missing >>/tmp/webinfer-setup-apt.log 2>&1 \
    || { tail -30 /tmp/webinfer-setup-apt.log >&2; die "apt-get install$missing"; }
fi

command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are not on PATH (Debian: apt-get install nodejs npm)"
# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.webinfer-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --omit=optional --ignore-scripts --loglevel=error >/tmp/webinfer-setup-npm.log 2>&1 \
    || { tail -30 /tmp/webinfer-setup-npm.log >&2; die "npm ci"; }
  echo "$want" >"$stamp"
fi

bundle=node_modules/node-llama-cpp/llama/gitRelease.bundle
if [ ! -f .cache/llama.cpp/.webinfer-done ] || [ "$bundle" -nt .cache/llama.cpp/.webinfer-done ]; then
  say "unpacking llama.cpp's source from $bundle into .cache/llama.cpp"
  rm -rf .cache/llama.cpp
  mkdir -p .cache
  git clone -q "$bundle" .cache/llama.cpp 2>/tmp/webinfer-setup-git.log \
    || { cat /tmp/webinfer-setup-git.log >&2; die "git clone $bundle"; }
  touch .cache/llama.cpp/.webinfer-done
fi
