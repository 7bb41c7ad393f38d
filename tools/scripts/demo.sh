#!/usr/bin/env bash
# The roamdisk story (run as root; the desktops are containers, and alice
# works in them as alice, uid 1000): installs dependencies, builds, starts a
# broker, creates a disk for alice and desktop A, writes files in A as alice,
# switches alice to B (which does not exist yet and is provisioned), shows the
# files there at once, hers, then removes A, breaks B's OS (its health check
# fails) and shows alice moved to a new, provisioned desktop by herself; there
# alice deletes a file by mistake, and restores it herself from inside her
# desktop (`roam`), as it was a moment before. Each step is
# printed with its timing. Everything lives in a temporary directory removed
# at the end.
# (tools/scripts/demo-disk.sh shows one user disk up close: the log, a past view,
# history, restore and undo.)
#
# Usage: bash tools/scripts/demo.sh [--remote]
#   --remote  the same story with desktops that reach the storage node only
#             over the network: each mounts alice's disk through the remote
#             driver, served by that epoch's roamfs (docs/remote.md)
# Env: ROAMDISK_BUILD_DIR  build directory (default: build)
set -uo pipefail

REMOTE=0
case ${1:-} in
--remote) REMOTE=1 ;;
"") ;;
*) echo "usage: bash tools/scripts/demo.sh [--remote]" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${ROAMDISK_BUILD_DIR:-$ROOT/build}
bash "$ROOT/tools/scripts/install-deps.sh" || exit 1
bash "$ROOT/tools/scripts/build.sh" "$BUILD" >/dev/null || exit 1
export ROAM_BROKER_BIN="$BUILD/broker/roam-broker" ROAM_AGENT_BIN="$BUILD/agent/roam-agent"
export ROAMCTL="$BUILD/tools/roamctl/roamctl" ROAMFS="$BUILD/fusefs/roamfs" ROAM_DESKTOP_TOOL="$ROOT/tools/desktop/roam-desktop"
export ROAM_BIN="$BUILD/tools/roam/roam"
source "$ROOT/tests/e2e/lib.sh"

# step "TITLE" CMD...: print the command, run it, print how long it took.
step() {
    local title=$1 start end
    shift
    printf '\n== %s\n$ %s\n' "$title" "$*"
    start=$(date +%s%N)
    "$@" || { echo "demo: step failed: $title" >&2; exit 1; }
    end=$(date +%s%N)
    printf -- '-- %d ms\n' $(((end - start) / 1000000))
}

alice_left() {  # alice_left DESKTOP: alice's disk is attached to another desktop
    local now
    now=$(desktop_of alice)
    [[ -n "$now" && "$now" != "$1" ]]
}

main() {
    if ((REMOTE)); then
        setup_broker "remote-ports = $((PORT + 1))-$((PORT + 10))" "--fuse --mount-driver remote" >/dev/null || exit 1
        printf 'remote desktops: each mounts alice'"'"'s disk over its veth pair (docs/remote.md)\n'
    else
        setup_broker >/dev/null || exit 1
    fi
    step "start the broker (keys, config and state in $T)" start_broker
    step "add user alice" ctl user add alice
    step "create alice's disk" ctl disk create alice
    step "create desktop A (the provisioner starts a container with its agent)" ctl desktop create A
    step "wait until A's agent has registered" wait_for 30 connected A
    step "attach alice's disk to A" ctl switch alice A
    step "alice in A: uid 1000, her home is hers" as_user A alice sh -c 'id && ls -ld /home/alice'
    step "write files as alice in A" as_user A alice sh -c \
        'cd /home/alice && echo "my thesis" > thesis.txt && mkdir photos &&
         head -c 20971520 /dev/urandom > photos/holiday.raw && sync && ls -l . photos'
    as_user A alice sh -c 'cd /home/alice && md5sum thesis.txt photos/holiday.raw' >"$T/sums"
    step "switch alice to B, which does not exist yet" ctl switch alice B
    step "the files are in B at once, still alice's" as_user B alice sh -c \
        'cd /home/alice && md5sum -c - && ls -ln thesis.txt' <"$T/sums"
    step "and no longer in A" sh -c "! $ROAM_DESKTOP_TOOL exec A --user alice ls /home/alice/thesis.txt 2>/dev/null"
    step "remove desktop A (so that failover needs a new desktop)" ctl desktop remove A
    step "break B's OS: its health check starts failing" break_desktop B
    step "the broker moves alice by itself" wait_for 30 alice_left B
    local now
    now=$(desktop_of alice)
    step "alice is on $now with every file" as_user "$now" alice sh -c 'cd /home/alice && md5sum -c -' <"$T/sums"
    step "a moment to come back to" as_user "$now" alice sync
    local before
    before=@$(date +%s.%N)
    sleep 0.2
    step "alice deletes her thesis by mistake" as_user "$now" alice rm /home/alice/thesis.txt
    step "alice asks her disk's log what happened (roam, in her desktop)" \
        as_user "$now" alice roam log /home/alice/thesis.txt
    step "alice restores it herself, as it was before (nothing is copied)" \
        as_user "$now" alice roam restore /home/alice/thesis.txt --at "$before"
    step "alice sees it at once" as_user "$now" alice cat /home/alice/thesis.txt
    step "the broker audited her requests" ctl audit
    step "desktops" ctl desktop list
    step "status" ctl status
    printf '\n== the broker log\n'
    cat "$T/broker.log"
}

main "$@"
