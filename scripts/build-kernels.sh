#!/usr/bin/env bash
# build-kernels.sh: builds the browser CPU path's WASM SIMD128 kernels,
# shim/simd128/kernels.c, into shim/simd128/kernels.wasm with Debian 12's
# clang-14 and lld-14 (scripts/setup.sh test installs them).
#
#   scripts/build-kernels.sh          rebuild shim/simd128/kernels.wasm
#   scripts/build-kernels.sh --check  rebuild into a temporary file and fail
#                                     unless it equals the committed module
#
# The module is committed so that `make serve` needs no C compiler; the
# check (make check) keeps it the build of the source beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
src=shim/simd128/kernels.c
out=shim/simd128/kernels.wasm
check=0
[ "${1:-}" = "--check" ] && check=1
command -v clang-14 >/dev/null || { echo "build-kernels: clang-14 is missing (scripts/setup.sh test installs it)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# --import-memory --shared-memory: the pool's one shared memory; its
# maximum is the JS side's to choose (4 GiB here is only the ceiling the
# module accepts). -fno-builtin: no memcpy/memset calls (there is no libc).
clang-14 --target=wasm32 -O3 -msimd128 -matomics -mbulk-memory -nostdlib -ffreestanding -fno-builtin \
  -Wall -Wextra -Werror \
  -Wl,--no-entry,--import-memory,--shared-memory,--max-memory=4294967296,--export=__heap_base,--strip-all \
  -o "$tmp/kernels.wasm" "$src"
# No kernel may use the shadow stack (kernels.c says why): no function
# body reads or writes a global (the stack pointer is global 0).
if wasm-objdump -d "$tmp/kernels.wasm" | grep -E 'global\.(get|set) ' >/dev/null; then
  wasm-objdump -d "$tmp/kernels.wasm" | grep -B3 -E 'global\.(get|set) ' >&2
  echo "build-kernels: a kernel uses the shadow stack (__stack_pointer)" >&2
  exit 1
fi
if [ $check = 1 ]; then
  cmp -s "$tmp/kernels.wasm" "$out" || { echo "build-kernels: $out is not the build of $src: run scripts/build-kernels.sh and commit it" >&2; exit 1; }
  exit 0
fi
cp "$tmp/kernels.wasm" "$out"
echo "build-kernels: $out ($(stat -c %s "$out") bytes)"
