#!/usr/bin/env bash
# Desktops are tenants: from inside desktop B, as its root and as its user
# bob, every attack on the storage node fails (tests/e2e/security_probes.sh):
# reading alice's store or any store, the broker's secret key, desktop A's
# key, the operator's key, or alice's file contents anywhere; seeing the
# broker's run directory, alice's disk or an operator's `roamfs --at` view
# mounted on the host; aborting a FUSE connection through fusectl; signalling
# a roamfs or the broker; reaching or binding a disk's control socket; making a device
# node of the node's disk; filling the own disk past its quota (EDQUOT); and,
# with B's agent key, sending malformed, random or oversized messages (tests/e2e/wire_probe.cc). Meanwhile alice works in A, and afterwards her
# switch and every desktop's heartbeat go on. The same probes run once more on
# the host as root, where each must succeed: proof that every probe detects a
# success. Prints the number of probes and how many succeeded (must be 0).
source "$(dirname "$0")/lib.sh"

PROBES="$(dirname "$0")/security_probes.sh"

secret_of() { sed -n 's/^secret = //p' "$1"; }

pid_of_roamfs() {  # pid_of_roamfs TEXT: the roamfs whose command line holds TEXT
    local pid
    for pid in $(pgrep -x roamfs); do
        grep -qF "$1" "/proc/$pid/cmdline" 2>/dev/null && echo "$pid"
    done
    return 0
}

connection_of() {  # connection_of MOUNT_POINT: its FUSE connection number (fusectl)
    awk -v m="$1" '$5 == m { split($3, d, ":"); print d[2] }' /proc/self/mountinfo
}

# Runs the probes in a context (a command prefix) with PARAMS; prints their
# lines and leaves "N M" (probes, successes) in $T/count.CONTEXT.
run_probes() {  # run_probes LABEL PREFIX...
    local label=$1
    shift
    "$@" sh -s -- "${PARAMS[@]}" <"$PROBES" >"$T/probes.$label" 2>"$T/probes.$label.err"
    sed "s/^/  [$label] /" "$T/probes.$label"
    echo "$(grep -c '^PROBE ' "$T/probes.$label") $(grep -c '^PROBE [^ ]* SUCCEEDED' "$T/probes.$label")" >"$T/count.$label"
}

main() {
    setup_broker || { fail "setup"; finish; }
    start_broker || finish
    local u
    ctl user add alice >/dev/null && ctl disk create alice >/dev/null
    check "bob's disk is created with a quota" sh -c "$(declare -f ctl); ctl user add bob && ctl disk create bob --quota 2M"
    check "the operator gives bob's detached disk another quota (in its store)" ctl disk quota bob 4M
    check "switch alice to A" ctl switch alice A
    check "switch bob to B" ctl switch bob B
    check "bob's roamfs has his quota" sh -c "$(declare -f ctl); ctl quota $(mount_of bob) | grep -q '^quota 4.0 MiB'"
    check "the operator raises it to 8 MiB (through bob's roamfs)" ctl disk quota bob 8M
    check "bob's roamfs has the new quota" sh -c "$(declare -f ctl); ctl quota $(mount_of bob) | grep -q '^quota 8.0 MiB'"
    check "the broker's status shows bob's quota" sh -c "$(declare -f ctl); ctl status | grep '^bob' | grep -q 'of 8.0 MiB'"
    local mark
    mark="alice-private-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    check "alice writes a private file in A" as_user A alice sh -c "echo $mark > /home/alice/diary && sync"
    # An operator's read-only view of alice's disk, mounted on the host.
    mkdir -p "$T/view"
    sleep 0.1
    check "the operator mounts a roamfs --at view on the host" \
        "$ROAMFS" "$T/state/disks/alice" "$T/view" --at "@$(date +%s.%N)"

    local alice_roamfs view_roamfs
    alice_roamfs=$(pid_of_roamfs "$(mount_of alice)")
    view_roamfs=$(pid_of_roamfs "$T/view")
    local -a common=(STATE="$T/state" RUN="$T/run" KEYS="$T/keys" STORE="$T/state/disks/alice"
        OWN_STORE="$T/state/disks/bob" ALICE_MARK="$mark"
        SECRETS="$(secret_of "$T/keys/broker.key") $(secret_of "$T/state/desktops/A.key") $(secret_of "$T/keys/operator.key")"
        ROAMFS_PIDS="$alice_roamfs $view_roamfs $(pid_of_roamfs "$(mount_of bob)")" BROKER_PID="$BROKER_PID"
        CONTROL_DIRS="$T/state/disks/alice/control $T/state/disks/bob/control" DISK_DEVICE="$(stat -c '%Hd:%Ld' "$T/state")")
    local view_conn
    view_conn=$(connection_of "$T/view")
    PARAMS=("${common[@]}" SEARCH=/ FILL_DIR=/home/bob QUOTA_MIB=8
        CONNECTIONS="$(connection_of "$(mount_of alice)") $(connection_of "$(mount_of bob)") $view_conn")

    log "probes inside desktop B, as its root and as bob:"
    run_probes B-root desktop exec B
    run_probes B-bob desktop exec B --user bob
    local n_root s_root n_bob s_bob
    read -r n_root s_root <"$T/count.B-root"
    read -r n_bob s_bob <"$T/count.B-bob"
    log "security: $((n_root + n_bob)) probes ($n_root as B's root, $n_bob as bob), $((s_root + s_bob)) succeeded"
    check "the probes ran" test "$((n_root + n_bob))" -gt 20
    check "no probe succeeded" test "$((s_root + s_bob))" = 0

    # B's root holds B's agent key: malformed, random and oversized messages
    # sent with it (2 MiB over three frames; one frame over 1 MiB) are refused
    # and the broker serves on (tests/e2e/wire_probe.cc, run in B).
    cp "$ROAM_WIRE_PROBE" "/proc/$(desktop pid B)/root/tmp/wire-probe"
    # shellcheck disable=SC2016  # expanded in the desktop
    desktop exec B sh -c 'conf=/etc/roam-agent/agent.conf
        /tmp/wire-probe "$(sed -n "s/^broker = //p" $conf)" "$(sed -n "s/^broker-public-key = //p" $conf)" \
            /etc/roam-agent/agent.key - B' >"$T/wire.B" 2>&1
    sed 's/^/  [B-root wire] /' "$T/wire.B"
    log "wire probes from B with its agent key: $(grep -c '^ok: ' "$T/wire.B") refused, $(grep -c '^FAIL' "$T/wire.B") got through"
    check "B's root with B's agent key: every malformed or oversized message is refused" \
        sh -c "grep -q '^ok: a frame over 1 MiB' $T/wire.B && ! grep -q '^FAIL' $T/wire.B"

    # shellcheck disable=SC2016  # expanded in the desktop
    check "df in B shows bob his quota as the disk's size" \
        as_user B bob sh -c 'df -k /home/bob | awk "NR == 2 { exit !(\$2 == 8192) }"'
    check "bob still writes inside his quota" as_user B bob sh -c "echo ok > /home/bob/small && sync"
    check "alice's roamfs is the one that served her before" test "$(pid_of_roamfs "$(mount_of alice)")" = "$alice_roamfs"
    check "alice still reads her file in A" as_user A alice grep -qx "$mark" /home/alice/diary
    check "the operator's view still works" grep -qx "$mark" "$T/view/diary"
    check "roamctl on the host still reaches alice's roamfs (gc)" ctl gc "$(mount_of alice)"
    check "A and B still heartbeat" wait_for 5 sh -c "$(declare -f connected ctl); connected A && connected B"
    check "alice switches to C" ctl switch alice C
    check "with her file" as_user C alice grep -qx "$mark" /home/alice/diary

    # The same probes on the host as root (what a desktop's root was before
    # desktops were containers): each must succeed. Only the operator's view
    # is aborted; the search covers the test's directory.
    PARAMS=("${common[@]}" SEARCH="$T" CONNECTIONS="$view_conn" FILL_DIR="$T" QUOTA_MIB=8)
    log "the same probes on the host, as root (each must succeed):"
    run_probes host env
    local n_host s_host
    read -r n_host s_host <"$T/count.host"
    log "on the host: $n_host probes, $s_host succeeded"
    check "every probe detects a success (on the host)" test "$s_host" = "$n_host" -a "$n_host" = "$n_root"
    check "the host's abort really aborted the view" sh -c "! stat $T/view/diary 2>/dev/null"
    umount -l "$T/view"
    finish
}

main "$@"
