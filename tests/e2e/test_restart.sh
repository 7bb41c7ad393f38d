#!/usr/bin/env bash
# The broker SIGKILLed in the middle of a switch (while the source's agent
# waits out the grace period of a busy process) and started again: the
# persisted intent is resumed and the disk ends attached exactly once, at the
# target, with every byte. Then the roamfs serving the disk is SIGKILLed: the
# broker re-exports the disk to the same desktop.
source "$(dirname "$0")/lib.sh"

roamfs_count() {  # roamfs processes serving alice's store
    local n=0 pid
    for pid in $(pgrep -x roamfs); do
        grep -qF "$T/state/disks/alice" "/proc/$pid/cmdline" 2>/dev/null && n=$((n + 1))
    done
    echo "$n"
}

attached_once_at() {  # attached_once_at DESKTOP
    local mounts
    mounts=$(awk -v t="$T/run/exports/" 'index($5, t) == 1 && $5 ~ /alice@/' /proc/self/mountinfo | wc -l)
    [[ "$(desktop_of alice)" == "$1" && "$(roamfs_count)" == 1 && "$mounts" == 1 ]] || {
        log "desktop $(desktop_of alice), $(roamfs_count) roamfs, $mounts host mounts"
        return 1
    }
}

switching() { ctl status | grep -q "detach -> B"; }

main() {
    setup_broker "grace-ms = 4000" || { fail "setup"; finish; }
    start_broker || finish
    ctl user add alice >/dev/null && ctl disk create alice >/dev/null && ctl desktop create A >/dev/null
    check "A connects" wait_for 30 connected A
    check "switch alice to A" ctl switch alice A
    check "B is provisioned" ctl desktop create B
    check "B connects" wait_for 30 connected B
    as_user A alice sh -c 'cd /home/alice && head -c 5242880 /dev/urandom > data && md5sum data' >"$T/sum.A"
    check "data written in A by alice" test -s "$T/sum.A"
    # A process of alice's that keeps her home busy: the detach waits 4 s before SIGKILL.
    as_user A alice sh -c 'cd /home/alice && trap "" TERM && exec sleep 600' >/dev/null 2>&1 &
    wait_for 10 sh -c "$ROAM_DESKTOP_TOOL exec A pgrep -x sleep"

    ctl switch alice B --timeout 60 >"$T/switch.out" 2>&1 &
    check "the switch reaches the detach phase" wait_for 20 switching
    kill -KILL "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null
    log "broker killed mid-switch"
    start_broker || finish
    check "the resumed switch ends with alice on B, attached exactly once" wait_for 60 attached_once_at B
    check "every byte is in B" sh -c "$ROAM_DESKTOP_TOOL exec B --user alice sh -c 'cd /home/alice && md5sum data' | cmp -s - $T/sum.A"
    check "A no longer has alice's home" wait_for 30 sh -c "! $ROAM_DESKTOP_TOOL exec A mountpoint -q /home/alice"
    check "the audit shows the resumed switch" grep -q "resuming the switch of alice to B" "$T/broker.log"

    # Supervision: the roamfs serving alice dies; the broker re-exports the
    # disk to the same desktop under a new epoch.
    local pid
    for pid in $(pgrep -x roamfs); do
        grep -qF "$T/state/disks/alice" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid"
    done
    check "a crashed roamfs is replaced: alice is back on B" wait_for 30 sh -c \
        "$ROAM_DESKTOP_TOOL exec B --user alice sh -c 'cd /home/alice && md5sum data' 2>/dev/null | cmp -s - $T/sum.A"
    check "attached exactly once after the recovery" wait_for 10 attached_once_at B
    finish
}

main "$@"
