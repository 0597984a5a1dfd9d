#!/usr/bin/env bash
# buttersink in a minute: makes two throw-away btrfs filesystems on loop
# devices in a temporary directory, takes three read-only snapshots with data,
# syncs them (a full send, then incremental ones), lists both sides, checks
# with checksumdir that every copy matches its source, and removes it all
# again (on success, failure or Ctrl-C). Uses the built commands in dist/
# (npm run build), as `npm pack` installs them. Run as root: npm run demo.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

die() { echo "demo: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "btrfs needs root: run it as root, or with sudo (sudo npm run demo)"
for tool in mkfs.btrfs btrfs mount umount mountpoint; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install btrfs-progs util-linux)"
done
[ -f dist/bin/buttersink.js ] || die "dist/ is not built: npm run build first"
buttersink() { node "$repo/dist/bin/buttersink.js" "$@"; }
checksumdir() { node "$repo/dist/bin/checksumdir.js" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/buttersink-demo.XXXXXX")
cleanup() {
  local status=$?
  set +e
  for m in "$work/pool" "$work/backup"; do
    mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
  done
  rm -rf "$work"
  [ "$status" = 0 ] && echo "demo: OK, everything removed" || echo "demo: FAILED (status $status), everything removed" >&2
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "two throw-away btrfs filesystems (loop devices, 512 MiB sparse images in $work)"
for fs in pool backup; do
  truncate -s 512M "$work/$fs.img"
  mkfs.btrfs -q "$work/$fs.img" >/dev/null
  mkdir "$work/$fs"
  mount -o loop "$work/$fs.img" "$work/$fs" # umount frees the loop device
done
pool=$work/pool
backup=$work/backup
mkdir "$pool/snaps" "$backup/copies" "$work/records"

step "a subvolume with data, and three read-only snapshots of it"
btrfs -q subvolume create "$pool/home"
mkdir -p "$pool/home/docs"
for day in 1 2 3; do
  head -c $((4 << 20)) /dev/urandom >"$pool/home/docs/day$day.bin"
  echo "notes of day $day" >>"$pool/home/notes.txt"
  [ "$day" = 3 ] && rm "$pool/home/docs/day1.bin"
  run btrfs -q subvolume snapshot -r "$pool/home" "$pool/snaps/2024-01-0$day"
done

step "the plan, without changing anything (-n)"
run buttersink -n "$pool/snaps/" "$backup/copies/"

step "a full send of the first snapshot (no trailing '/': one snapshot)"
run buttersink "$pool/snaps/2024-01-01" "$backup/copies/"

step "the rest, sent incrementally"
run buttersink "$pool/snaps/" "$backup/copies/"

step "listings of both sides"
run buttersink "$pool/snaps/"
run buttersink "$backup/copies/"

step "checksumdir: record each source snapshot, verify its copy"
for snap in 2024-01-01 2024-01-02 2024-01-03; do
  (cd "$work/records" && run checksumdir -q "$pool/snaps/$snap")
  run checksumdir -q --verify --records "$work/records" "$backup/copies/$snap"
done
