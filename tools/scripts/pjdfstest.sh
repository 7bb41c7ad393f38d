#!/usr/bin/env bash
# Run pjdfstest (POSIX conformance) against roamfs, libfuse's passthrough_ll,
# or a plain directory, as root.
#
# Usage:
#   tools/scripts/pjdfstest.sh [options] PJDFSTEST_DIR [BUILD_DIR]
#
#   PJDFSTEST_DIR  a checkout of pjdfstest (github.com/pjd/pjdfstest) that is
#                  already built as its README says (its `pjdfstest` binary
#                  next to tests/). This repository neither ships, downloads
#                  nor builds pjdfstest.
#   BUILD_DIR      roamdisk build directory (default: build), for roamfs/roamctl
#
# Options:
#   --fs-dir DIR      run in a fresh subdirectory of DIR instead of mounting roamfs
#   --passthrough     run over libfuse's passthrough_ll example instead of roamfs
#   --mount-opts OPTS -o options for the FUSE mount. Defaults: none for roamfs
#                     (as root it mounts with allow_other,default_permissions
#                     itself); allow_other,default_permissions for passthrough_ll
#                     (pjdfstest switches to other uids, and passthrough_ll running
#                     as root checks no permissions: with these options it fails
#                     160 assertions here, against 0 for ext4)
#   --tests SUBDIR    run only tests/SUBDIR (e.g. rename, chmod/00.t)
#   --log FILE        where the full prove output goes
#                     (default: BUILD_DIR/pjdfstest-TARGET.log)
#   --keep            keep the temporary directory (store, backing dir)
#
# Exit status: 0 when every assertion passed, 1 when any failed, 2 on usage or
# setup errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPTS_DIR="$ROOT/tools/scripts"
# shellcheck source-path=SCRIPTDIR
source "$SCRIPTS_DIR/fuse_daemons.sh"

MODE=roamfs
FS_DIR=
MOUNT_OPTS=
MOUNT_OPTS_SET=0
TESTS_SUB=
LOG=
KEEP=0
PJD_DIR=
BUILD_DIR=build

TMP=
MNT=
DAEMON_PID=
RUN_DIR=
TARGET=
CHILD=

die() {
    echo "pjdfstest: error: $*" >&2
    exit 2
}

log() {
    echo "pjdfstest: $*" >&2
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

on_signal() {
    if [[ -n "$CHILD" ]]; then
        pkill -TERM -P "$CHILD" 2>/dev/null || true # the running test script
        kill -TERM "$CHILD" 2>/dev/null || true     # prove
    fi
    exit 130
}

cleanup() {
    local rc=$?
    cd /
    if [[ -n "$MNT" ]]; then
        unmount_fuse "$MNT" || log "could not unmount $MNT"
    fi
    if [[ -n "$DAEMON_PID" ]]; then
        wait_exit_or_kill "$DAEMON_PID" 10 || log "daemon $DAEMON_PID still running after unmount; killing it"
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if ((KEEP)); then
        [[ -z "$TMP" ]] || log "kept $TMP"
        [[ "$MODE" != dir || -z "$RUN_DIR" ]] || log "kept $RUN_DIR"
    else
        [[ -z "$TMP" ]] || rm -rf "$TMP"
        [[ "$MODE" != dir || -z "$RUN_DIR" ]] || rm -rf "$RUN_DIR"
    fi
    exit "$rc"
}

parse_args() {
    local -a pos=()
    while (($# > 0)); do
        case $1 in
        --fs-dir)
            (($# >= 2)) || die "--fs-dir needs a directory"
            MODE=dir FS_DIR=$2
            shift
            ;;
        --passthrough) MODE=passthrough ;;
        --mount-opts)
            (($# >= 2)) || die "--mount-opts needs a value"
            MOUNT_OPTS=$2 MOUNT_OPTS_SET=1
            shift
            ;;
        --tests)
            (($# >= 2)) || die "--tests needs a value"
            TESTS_SUB=$2
            shift
            ;;
        --log)
            (($# >= 2)) || die "--log needs a file"
            LOG=$2
            shift
            ;;
        --keep) KEEP=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) pos+=("$1") ;;
        esac
        shift
    done
    ((${#pos[@]} >= 1 && ${#pos[@]} <= 2)) || {
        usage >&2
        exit 2
    }
    if ((!MOUNT_OPTS_SET)) && [[ "$MODE" == passthrough ]]; then
        MOUNT_OPTS=allow_other,default_permissions
    fi
    PJD_DIR=$(cd "${pos[0]}" 2>/dev/null && pwd) || die "no such directory: ${pos[0]}"
    if ((${#pos[@]} == 2)); then
        BUILD_DIR=${pos[1]}
    fi
    [[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
}

check_prereqs() {
    [[ $EUID -eq 0 ]] || die "pjdfstest must run as root"
    command -v prove >/dev/null || die "prove not found (perl package)"
    [[ -d "$PJD_DIR/tests" ]] || die "$PJD_DIR has no tests/ directory: is it a pjdfstest checkout?"
    [[ -x "$PJD_DIR/pjdfstest" ]] ||
        die "$PJD_DIR/pjdfstest is not built: build it as pjdfstest's README says (autoreconf -ifs && ./configure && make pjdfstest)"
    if [[ -n "$TESTS_SUB" ]]; then
        [[ -e "$PJD_DIR/tests/$TESTS_SUB" ]] || die "no such test path: $PJD_DIR/tests/$TESTS_SUB"
    fi
    case $MODE in
    roamfs)
        [[ -x "$BUILD_DIR/fusefs/roamfs" ]] || die "$BUILD_DIR/fusefs/roamfs not found: run tools/scripts/build.sh first"
        [[ -x "$BUILD_DIR/tools/roamctl/roamctl" ]] || die "$BUILD_DIR/tools/roamctl/roamctl not found: run tools/scripts/build.sh first"
        ;;
    passthrough)
        [[ -r "$PT_SOURCE" ]] || die "$PT_SOURCE not found (package libfuse3-dev)"
        ;;
    dir)
        [[ -d "$FS_DIR" ]] || die "--fs-dir $FS_DIR is not a directory"
        ;;
    esac
    if [[ "$MODE" != dir ]]; then
        [[ -c /dev/fuse ]] || die "/dev/fuse missing (modprobe fuse)"
        command -v fusermount3 >/dev/null || die "fusermount3 not found (package fuse3)"
    fi
}

# mounted_or_die DIR: wait up to 20 s for DIR to become a mount point while
# the FUSE daemon (DAEMON_PID) stays alive.
mounted_or_die() {
    wait_mount "$1" "$DAEMON_PID" 20 && return 0
    if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
        sed 's/^/  daemon: /' "$TMP/daemon.log" >&2 2>/dev/null || true
        die "the FUSE daemon exited before $1 was mounted"
    fi
    die "$1 was not mounted within 20 s"
}

setup_target() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/roamdisk-pjdfstest.XXXXXX")
    chmod 755 "$TMP"
    local -a oflag=()
    [[ -n "$MOUNT_OPTS" ]] && oflag=(-o "$MOUNT_OPTS")
    case $MODE in
    dir)
        MNT=
        RUN_DIR=$(mktemp -d "$FS_DIR/pjdfstest.XXXXXX")
        chmod 755 "$RUN_DIR"
        TARGET="directory $FS_DIR ($(stat -f -c %T "$FS_DIR"))"
        ;;
    passthrough)
        local bin="$TMP/passthrough_ll"
        compile_passthrough_ll "$bin" || die "could not compile $PT_SOURCE"
        mkdir -p "$TMP/backing" "$TMP/mnt"
        chmod 755 "$TMP/backing" "$TMP/mnt"
        MNT="$TMP/mnt"
        local opts="source=$TMP/backing${MOUNT_OPTS:+,$MOUNT_OPTS}"
        start_daemon "$TMP/daemon.log" "$bin" -f -o "$opts" "$MNT"
        mounted_or_die "$MNT"
        RUN_DIR=$MNT
        TARGET="passthrough_ll (-o $opts)"
        ;;
    roamfs)
        mkdir -p "$TMP/mnt"
        chmod 755 "$TMP/mnt"
        "$BUILD_DIR/tools/roamctl/roamctl" mkfs "$TMP/store" </dev/null >/dev/null ||
            die "roamctl mkfs $TMP/store failed"
        MNT="$TMP/mnt"
        start_daemon "$TMP/daemon.log" "$BUILD_DIR/fusefs/roamfs" "$TMP/store" "$MNT" -f "${oflag[@]}"
        mounted_or_die "$MNT"
        RUN_DIR=$MNT
        TARGET="roamfs${MOUNT_OPTS:+ (-o $MOUNT_OPTS)}"
        ;;
    esac
}

# Sum the "Failed N/M subtests" lines of a prove log.
count_failed_assertions() {
    awk '{ if (match($0, /Failed [0-9]+\/[0-9]+ subtests/)) {
               split(substr($0, RSTART + 7, RLENGTH - 7), a, "/"); n += a[1] } }
         END { print n + 0 }' "$1"
}

main() {
    parse_args "$@"
    check_prereqs
    trap cleanup EXIT
    trap on_signal INT TERM
    setup_target

    local name=$MODE
    [[ -n "$LOG" ]] || {
        mkdir -p "$BUILD_DIR" 2>/dev/null || true
        if [[ -d "$BUILD_DIR" ]]; then LOG="$BUILD_DIR/pjdfstest-$name.log"; else LOG="$TMP/pjdfstest-$name.log"; fi
    }
    local tests="$PJD_DIR/tests${TESTS_SUB:+/$TESTS_SUB}"
    log "target: $TARGET"
    log "running prove -r $tests in $RUN_DIR (log: $LOG)"

    local rc=0 start=$SECONDS
    # In the background so that a signal stops it at once (see on_signal).
    (cd "$RUN_DIR" && exec prove -r "$tests") >"$LOG" 2>&1 </dev/null &
    CHILD=$!
    wait "$CHILD" || rc=$?
    CHILD=
    local secs=$((SECONDS - start))

    # The prove summary: everything from "Test Summary Report" (present only
    # when something failed) or else the closing "All tests successful" lines.
    if grep -q '^Test Summary Report' "$LOG"; then
        sed -n '/^Test Summary Report/,$p' "$LOG"
    else
        tail -n 3 "$LOG"
    fi
    local failed
    failed=$(count_failed_assertions "$LOG")
    echo "pjdfstest on $TARGET: $failed failed assertions, prove exit $rc, ${secs}s (full log: $LOG)"
    if ((failed > 0 || rc != 0)); then
        exit 1
    fi
}

main "$@"
