#!/usr/bin/env bash
# One user disk up close (as root): installs dependencies, builds, creates a user disk,
# mounts it, makes and changes files, shows the operation log, "ransomware"
# overwrites and deletes files, restores them by time, looks at the past
# through a read-only view, undoes the restore, unmounts.
#
# Usage: bash tools/scripts/demo-disk.sh [--keep]
#   --keep   leave the temporary directory (store) in place afterwards
# Env: ROAMDISK_BUILD_DIR  build directory (default: build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${ROAMDISK_BUILD_DIR:-$ROOT/build}
KEEP=0
DEMO=
MNT=

die() {
    echo "demo: error: $*" >&2
    exit 1
}

# run CMD...: echo a command, then run it.
run() {
    echo "\$ $*"
    "$@"
}

# sh_run "CMD": echo a shell command line (with redirections), then run it.
sh_run() {
    echo "\$ $1"
    bash -c "$1"
}

cleanup() {
    local rc=$?
    cd /
    if [[ -n "$MNT" ]] && mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
    fi
    if [[ -n "$DEMO" ]]; then
        if ((KEEP)); then
            echo "demo: kept $DEMO"
        else
            rm -rf "$DEMO"
        fi
    fi
    exit "$rc"
}

main() {
    case ${1:-} in
    --keep) KEEP=1 ;;
    "") ;;
    *) die "usage: bash tools/scripts/demo-disk.sh [--keep]" ;;
    esac
    [[ $EUID -eq 0 ]] || die "run as root (it installs packages and mounts a filesystem)"

    echo "== installing dependencies"
    bash "$ROOT/tools/scripts/install-deps.sh"
    echo "== building ($BUILD)"
    bash "$ROOT/tools/scripts/build.sh" "$BUILD" >/tmp/roamdisk-demo-build.log 2>&1 ||
        { tail -n 30 /tmp/roamdisk-demo-build.log >&2; die "build failed (log: /tmp/roamdisk-demo-build.log)"; }
    echo "built $BUILD/fusefs/roamfs and $BUILD/tools/roamctl/roamctl"
    export PATH="$BUILD/fusefs:$BUILD/tools/roamctl:$PATH"

    trap cleanup EXIT
    DEMO=$(mktemp -d /tmp/roamdisk-demo.XXXXXX)
    MNT="$DEMO/mnt"
    cd "$DEMO"
    echo
    echo "== a user disk in $DEMO"
    run roamctl mkfs store
    run mkdir mnt
    run roamfs store mnt
    run mountpoint mnt

    echo
    echo "== making and changing files"
    run mkdir mnt/docs
    sh_run 'echo "first line" > mnt/docs/notes.txt'
    sh_run 'echo "second line" >> mnt/docs/notes.txt'
    run mv mnt/docs/notes.txt mnt/docs/todo.txt
    run chmod 600 mnt/docs/todo.txt
    run ln -s docs/todo.txt mnt/todo
    run setfattr -n user.project -v roamdisk mnt/docs/todo.txt
    sh_run 'echo scratch > mnt/scratch.txt'
    run rm mnt/scratch.txt
    run ls -lR mnt
    run cat mnt/todo
    run getfattr -d mnt/docs/todo.txt

    echo
    echo "== the operation log"
    run roamctl log mnt

    echo
    echo "== a moment to come back to"
    run sync -f mnt
    sleep 0.2
    local before
    before=@$(date +%s.%N)
    echo "\$ before=$before"
    sleep 0.2

    echo
    echo "== a process encrypts one file, renames it, and deletes the directory"
    sh_run 'echo "ENCRYPTED $(head -c 12 /dev/urandom | base64)" > mnt/docs/todo.txt'
    run mv mnt/docs/todo.txt mnt/docs/todo.txt.locked
    run rm -rf mnt/docs
    run ls -l mnt

    echo
    echo "== the disk as it was, as a read-only view beside the live disk"
    run mkdir past
    run roamfs --at "$before" store past
    run cat past/docs/todo.txt
    run fusermount3 -u past

    echo
    echo "== the versions of the file, and a dry run of the restore"
    run roamctl history mnt /docs/todo.txt
    run roamctl restore mnt /docs --at "$before" --dry-run

    echo
    echo "== restore /docs to that moment (no data is copied)"
    run roamctl restore mnt /docs --at "$before"
    run ls -lR mnt/docs
    run cat mnt/todo
    run getfattr -d mnt/docs/todo.txt

    echo
    echo "== the restore is logged, and can itself be undone"
    run roamctl log mnt --op restore
    local restore_seq
    restore_seq=$(roamctl log mnt --op restore --json | tail -n 1 | sed 's/.*"seq":\([0-9]*\).*/\1/')
    run roamctl restore mnt /docs --before-op "$restore_seq"
    run ls -l mnt
    echo "(and undoing the undo brings the files back again)"
    run roamctl restore mnt /docs --before-op "$((restore_seq + 1))"
    run cat mnt/todo

    echo
    echo "== space: live data, history, free"
    run roamctl df mnt

    echo
    echo "== unmounting"
    run fusermount3 -u mnt
    echo
    echo "demo: done"
}

main "$@"
