#!/usr/bin/env bash
# Run xfstests (the suite Linux filesystems are held to) on roamfs, as root.
#
# Usage:
#   tools/scripts/xfstests.sh [options] XFSTESTS_DIR [GROUP_OR_TEST...]
#
#   XFSTESTS_DIR     a checkout of xfstests (git.kernel.org fs/xfs/xfstests-dev,
#                    mirrored as kdave/xfstests). This repository neither ships
#                    nor downloads it; the script builds it (make) when its
#                    ltp/fsstress binary is missing. Its build needs the
#                    packages tools/scripts/install-deps.sh installs.
#   GROUP_OR_TEST    what ./check runs: -g arguments for groups (generic/quick,
#                    generic/acl, ...; "quick" alone means generic/quick) and
#                    test names (generic/099). Default: generic/quick.
#
# Options:
#   --build DIR      roamdisk build directory (default: build)
#   --expected FILE  expected failures (default: tools/scripts/xfstests-expected.txt),
#                    one test a line with the reason after it
#   --keep           keep the temporary directory (stores, mount points)
#
# The test and scratch devices are two roamfs stores in a temporary directory,
# mounted by mount(8) through the helper tools/scripts/mount.fuse.roamfs
# (FSTYP=fuse, FUSE_SUBTYP=.roamfs), which the script installs as
# /sbin/mount.fuse.roamfs for the run and removes after. xfstests' users
# (fsgqa, fsgqa2, 123456-fsgqa) are created when missing, as its README asks.
#
# Prints the tests that passed, failed and did not run, and the failures that
# are not in the expected list. Exit status: 0 when every failure is an
# expected one, 1 otherwise, 2 on usage or setup errors.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SCRIPTS_DIR="$ROOT/tools/scripts"
HELPER=/sbin/mount.fuse.roamfs
HELPER_MARK="# installed by roamdisk's xfstests.sh"

BUILD_DIR=build
EXPECTED="$SCRIPTS_DIR/xfstests-expected.txt"
KEEP=0
XFS_DIR=
SELECTION=()
TMP=

die() {
    echo "xfstests: error: $*" >&2
    exit 2
}

log() {
    echo "xfstests: $*" >&2
}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

parse_args() {
    local -a pos=()
    while (($# > 0)); do
        case $1 in
        --build)
            (($# >= 2)) || die "--build needs a directory"
            BUILD_DIR=$2
            shift
            ;;
        --expected)
            (($# >= 2)) || die "--expected needs a file"
            EXPECTED=$2
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
    ((${#pos[@]} >= 1)) || {
        usage >&2
        exit 2
    }
    XFS_DIR=$(cd "${pos[0]}" 2>/dev/null && pwd) || die "no such directory: ${pos[0]}"
    SELECTION=("${pos[@]:1}")
    ((${#SELECTION[@]} > 0)) || SELECTION=(generic/quick)
    [[ "$BUILD_DIR" = /* ]] || BUILD_DIR="$ROOT/$BUILD_DIR"
}

check_prereqs() {
    [[ $EUID -eq 0 ]] || die "xfstests must run as root"
    [[ -x "$XFS_DIR/check" ]] || die "$XFS_DIR/check not found: is it an xfstests checkout?"
    [[ -x "$BUILD_DIR/fusefs/roamfs" ]] || die "$BUILD_DIR/fusefs/roamfs not found: run tools/scripts/build.sh first"
    [[ -x "$BUILD_DIR/tools/roamctl/roamctl" ]] || die "$BUILD_DIR/tools/roamctl/roamctl not found"
    [[ -r "$EXPECTED" ]] || die "expected failures file $EXPECTED not found"
    [[ -c /dev/fuse ]] || die "/dev/fuse missing (modprobe fuse)"
    if [[ -e "$HELPER" ]] && ! grep -qF "$HELPER_MARK" "$HELPER"; then
        die "$HELPER exists and is not ours: move it away first"
    fi
}

build_xfstests() {
    [[ -x "$XFS_DIR/ltp/fsstress" ]] && return 0
    log "building xfstests in $XFS_DIR (make; log: $XFS_DIR/roamdisk-build.log)"
    make -C "$XFS_DIR" -j"$(nproc)" >"$XFS_DIR/roamdisk-build.log" 2>&1 ||
        die "xfstests did not build: see $XFS_DIR/roamdisk-build.log"
}

# The users xfstests' permission tests switch to, each with a group of its
# name (tests require the groups fsgqa and fsgqa2 too).
ensure_users() {
    local u
    for u in fsgqa fsgqa2 123456-fsgqa; do
        getent group "$u" >/dev/null || groupadd "$u"
        getent passwd "$u" >/dev/null || useradd -m -g "$u" "$u"
    done
}

unmount_all() {
    local m
    for m in "$TMP/test" "$TMP/scratch"; do
        mountpoint -q "$m" 2>/dev/null || continue
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
    done
}

cleanup() {
    local rc=$?
    cd /
    if [[ -n "$TMP" ]]; then
        unmount_all
        if ((KEEP)); then log "kept $TMP"; else rm -rf "$TMP"; fi
    fi
    if [[ -e "$HELPER" ]] && grep -qF "$HELPER_MARK" "$HELPER"; then rm -f "$HELPER"; fi
    exit "$rc"
}

install_helper() {
    cat >"$HELPER" <<EOF
#!/bin/sh
$HELPER_MARK
ROAMFS_BIN='$BUILD_DIR/fusefs/roamfs' ROAMCTL_BIN='$BUILD_DIR/tools/roamctl/roamctl' \\
    exec '$SCRIPTS_DIR/mount.fuse.roamfs' "\$@"
EOF
    chmod 755 "$HELPER"
}

# xfstests checks that TEST_DEV is mounted as an FSTYP filesystem by the type
# `df -T` prints, which is "fuse.roamfs" (roamctl finds mounted disks by that
# subtype), while FSTYP=fuse expects "fuse": a df first in PATH prints roamfs
# mounts as "fuse" (xfstests maps fuse.glusterfs and fuse.ceph-fuse alike).
install_df_wrapper() {
    mkdir -p "$TMP/bin"
    cat >"$TMP/bin/df" <<EOF
#!/bin/sh
$(type -P df) "\$@" | sed 's/ fuse\.roamfs / fuse /'
EOF
    chmod 755 "$TMP/bin/df"
}

# The xfstests configuration: the two stores by their mount-table source.
write_config() {
    mkdir -p "$TMP/test" "$TMP/scratch"
    chmod 755 "$TMP" "$TMP/test" "$TMP/scratch"
    cat >"$TMP/local.config" <<EOF
export FSTYP=fuse
export FUSE_SUBTYP=.roamfs
export TEST_DEV=roamfs:$TMP/test-store
export TEST_DIR=$TMP/test
export SCRATCH_DEV=roamfs:$TMP/scratch-store
export SCRATCH_MNT=$TMP/scratch
export RESULT_BASE=$TMP/results
EOF
}

# The tests of the expected list, one a line (comments and reasons dropped).
expected_tests() {
    awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$EXPECTED"
}

# reason_of TEST: its reason in the expected list.
reason_of() {
    awk -v t="$1" '$1 == t { $1 = ""; sub(/^[[:space:]]+/, ""); print; exit }' "$EXPECTED"
}

# words_after LABEL LOG: the test names on ./check's summary line "LABEL: ...".
words_after() {
    sed -n "s/^$1: //p" "$2" | tr ' ' '\n' | sed '/^$/d' | sort -u
}

# check_args: ./check's arguments for SELECTION.
check_args() {
    local s
    for s in "${SELECTION[@]}"; do
        case $s in
        */[0-9]*) echo "$s" ;;
        quick | auto | acl | perms | rw) printf '%s\n' -g "generic/$s" ;;
        *) printf '%s\n' -g "$s" ;;
        esac
    done
}

report() {
    local out=$1 ran failed notrun unexpected
    ran=$(words_after Ran "$out")
    failed=$(words_after Failures "$out")
    notrun=$(words_after "Not run" "$out")
    # ./check's "Ran" lists every test it tried, those that did not run too.
    local passed n_passed n_failed n_notrun
    passed=$(comm -23 <(echo "$ran") <(printf '%s\n' "$failed" "$notrun" | sed '/^$/d' | sort -u))
    n_passed=$(grep -c . <<<"$passed" || true)
    n_failed=$(grep -c . <<<"$failed" || true)
    n_notrun=$(grep -c . <<<"$notrun" || true)
    unexpected=$(comm -23 <(echo "$failed" | sed '/^$/d') <(expected_tests | sort -u))
    local t
    for t in $failed; do
        if grep -qxF "$t" <<<"$unexpected"; then echo "FAILED   $t"; else echo "expected $t: $(reason_of "$t")"; fi
    done
    local n_unexpected
    n_unexpected=$(grep -c . <<<"$unexpected" || true)
    echo "xfstests ${SELECTION[*]} on roamfs: $n_passed passed, $n_failed failed ($n_unexpected unexpected), $n_notrun not run (full output: $out)"
    ((n_unexpected == 0))
}

main() {
    parse_args "$@"
    check_prereqs
    build_xfstests
    ensure_users
    trap cleanup EXIT
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/roamdisk-xfstests.XXXXXX")
    install_helper
    install_df_wrapper
    write_config
    local store
    for store in test-store scratch-store; do
        "$BUILD_DIR/tools/roamctl/roamctl" mkfs "$TMP/$store" </dev/null >/dev/null 2>"$TMP/mkfs.err" ||
            die "roamctl mkfs failed: $(cat "$TMP/mkfs.err")"
    done
    local out
    out="$BUILD_DIR/xfstests-$(date +%Y%m%d-%H%M%S).log"
    local -a args
    mapfile -t args < <(check_args)
    log "running ./check ${args[*]} (output: $out)"
    local rc=0
    (cd "$XFS_DIR" && PATH="$TMP/bin:$PATH" HOST_OPTIONS="$TMP/local.config" exec ./check "${args[@]}") </dev/null >"$out" 2>&1 || rc=$?
    rm -rf "$BUILD_DIR/xfstests-results"
    cp -r "$TMP/results" "$BUILD_DIR/xfstests-results" 2>/dev/null || true
    grep -q '^Ran: ' "$out" || {
        tail -n 20 "$out" >&2
        die "./check exited $rc without a summary"
    }
    report "$out" || exit 1
}

main "$@"
