#!/usr/bin/env bash
# A Vulkan driver with subgroup matrices (VK_KHR_cooperative_matrix) on a machine without a GPU, so the tensor-core
# WGSL kernels can be tested on the CPU: Mesa ≥ 25.1's lavapipe, which Debian has in trixie-backports (Debian 12's
# backports stop at 25.0, without cooperative matrices). Its libraries need trixie's glibc and libstdc++, so nothing
# is installed: the packages are unpacked into DEST (default .cache/vulkan-sysroot) with their dependencies, and a
# test runs Node there through trixie's dynamic loader:
#   DEST/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 --library-path DEST/usr/lib/x86_64-linux-gnu "$(command -v node)" FILE
# with VK_DRIVER_FILES=DEST/lvp_icd.json. test/backends/webgpu-tensor-cores.test.ts does this when DEST exists.
# Needs only Debian's archive (apt's own state stays untouched: apt runs on a private state directory). x86-64 only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mkdir -p "${1:-$root/.cache/vulkan-sysroot}" && cd "${1:-$root/.cache/vulkan-sysroot}" && pwd)
[ "$(uname -m)" = x86_64 ] || { echo "vulkan-sysroot: x86-64 only" >&2; exit 1; }
[ -f "$dest/lvp_icd.json" ] && { echo "vulkan-sysroot: $dest is ready"; exit 0; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/parts"; touch "$work/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# the Debian archive this machine's apt already uses (its first non-security source), never an address of our own
archive=$({ sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr ' ' '\n'
        grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | grep -oE '[a-z+]+://[^ ]+'; } | grep -v -- '-security' | head -1 || true)
[ -n "$archive" ] || { echo "vulkan-sysroot: no Debian archive in apt's sources" >&2; exit 1; }
printf 'deb [signed-by=%s] %s trixie main\ndeb [signed-by=%s] %s trixie-backports main\n' "$keyring" "$archive" "$keyring" "$archive" > "$work/sources.list"
apt_opts=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts="$work/parts" -o Dir::State="$work"
  -o Dir::State::Lists="$work/lists" -o Dir::State::status="$work/status" -o Dir::Cache="$work/cache"
  -o Debug::NoLocking=1 -o APT::Sandbox::User=root -o APT::Default-Release=trixie)
apt-get "${apt_opts[@]}" -qq update
# the whole dependency closure (the private status lists nothing installed): glibc, libstdc++, LLVM, the loader —
# the Mesa that was tested (26.1.6), or the newest trixie-backports has once the archive has moved on
get() { apt-get "${apt_opts[@]}" -qq -y --download-only install -t trixie-backports "$@" libvulkan1 >/dev/null; }
get mesa-vulkan-drivers=26.1.6-1~bpo13+1 2>/dev/null || get mesa-vulkan-drivers
for deb in "$work"/cache/archives/*.deb; do dpkg-deb -x "$deb" "$dest"; done
lib="$dest/usr/lib/x86_64-linux-gnu"
[ -f "$lib/libvulkan_lvp.so" ] || { echo "vulkan-sysroot: no lavapipe in the unpacked packages" >&2; exit 1; }
printf '{ "file_format_version": "1.0.1", "ICD": { "library_path": "%s", "api_version": "1.4.0" } }\n' "$lib/libvulkan_lvp.so" > "$dest/lvp_icd.json"
echo "vulkan-sysroot: Mesa $(ls "$work"/cache/archives/ | sed -n 's/^mesa-vulkan-drivers_\([^_]*\)_.*/\1/p' | sed 's/%3a/:/') in $dest"
