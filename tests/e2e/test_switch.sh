#!/usr/bin/env bash
# End to end: a broker, a disk for alice, container desktop A; files written
# in A by alice (uid 1000, who owns her home); switch to B (provisioned on
# demand): the files are there at once, still hers, and A no longer sees them;
# B reports damage: alice moves by herself; the agent of her desktop is
# SIGKILLed, then (next desktop) SIGSTOPped: she moves, and the old desktop is
# fenced (every read and write from it fails, nothing reaches the op log); an
# unknown key is refused; an agent key cannot switch another user nor have a
# desktop provisioned, but may
# switch its own; --no-force with a busy home refuses and changes nothing.
source "$(dirname "$0")/lib.sh"

refused_in_b() {  # refused_in_b SCRIPT ARG: SCRIPT run as B's root fails (its stderr in $T/refused.err)
    ! in_desktop B sh -c "$1" - "$2" 2>"$T/refused.err"
}

same_files() {  # same_files DESKTOP: the checksums alice reads in DESKTOP match the ones taken in A
    as_user "$1" alice sh -c 'cd /home/alice && md5sum f big sub/g' >"$T/sums.$1" && cmp -s "$T/sums.A" "$T/sums.$1"
}

# alice's home and files belong to uid 1000 = alice, as DESKTOP sees them.
owned_by_alice() {  # owned_by_alice DESKTOP
    local owners
    owners=$(in_desktop "$1" stat -c '%u:%g %U' /home/alice /home/alice/f /home/alice/sub/g | sort -u)
    [[ "$owners" == "1000:1000 alice" ]] || { log "owners in $1: $owners"; return 1; }
}

not_attached_in() {  # the old desktop has no disk at alice's home
    ! in_desktop "$1" mountpoint -q /home/alice
}

# From the fenced desktop: reads and writes through the old mount fail, and
# none of the attempts shows up in the op log.
fenced() {  # fenced OLD_DESKTOP
    local old=$1 marker="after-fence-$1"
    if as_user "$old" alice cat /home/alice/f >/dev/null 2>&1; then
        log "a read from $old succeeded"; return 1
    fi
    if as_user "$old" alice sh -c "echo x > /home/alice/$marker" 2>/dev/null; then
        log "a write from $old succeeded"; return 1
    fi
    if ctl log "$(mount_of alice)" | grep -q "$marker"; then
        log "the op log shows $marker"; return 1
    fi
    return 0
}

# Keeps a shell in the desktop with its working directory in alice's home,
# so that the desktop holds the old mount when its agent stops answering.
hold_home() {  # hold_home DESKTOP
    as_user "$1" alice sh -c 'cd /home/alice && exec sleep 600' >/dev/null 2>&1 &
    wait_for 10 sh -c "$ROAM_DESKTOP_TOOL exec $1 pgrep -x sleep"
}

hold_export() {  # hold_export DESKTOP: a process of its root works in alice's export (not her home)
    in_desktop "$1" sh -c 'cd /run/roam-agent/exports/alice@* && exec sleep 600' >/dev/null 2>&1 &
    wait_for 10 sh -c "$ROAM_DESKTOP_TOOL exec $1 pgrep -x sleep"
}


main() {
    setup_broker || { fail "setup"; finish; }
    start_broker || finish

    check "user add" ctl user add alice
    check "disk create" ctl disk create alice
    check "user add bob" ctl user add bob
    check "desktop create A" ctl desktop create A
    check "A connects" wait_for 30 connected A
    check "switch alice to A" ctl switch alice A
    check "alice is on A" test "$(desktop_of alice)" = A

    check "alice is uid 1000 in A" test "$(as_user A alice id -u)" = 1000
    as_user A alice sh -c 'cd /home/alice && echo hello > f && mkdir sub && echo g > sub/g &&
        head -c 10485760 /dev/urandom > big && sync && md5sum f big sub/g' >"$T/sums.A"
    check "files written in A by alice" test -s "$T/sums.A"
    check "alice owns her home and files in A" owned_by_alice A
    check "the op log records alice as uid 1000" sh -c "$ROAMCTL log $(mount_of alice) --json | grep '\"path\":\"/sub/g\"' | grep -q '\"uid\":1000'"

    local t0=$SECONDS
    check "switch alice to B (B is provisioned)" ctl switch alice B
    log "switch with provisioning took $((SECONDS - t0)) s"
    check "every byte is in B at once" same_files B
    check "and alice owns them in B" owned_by_alice B
    check "A no longer has alice's home" not_attached_in A
    check "A has no disk mounted anywhere" sh -c "! $ROAM_DESKTOP_TOOL exec A grep -q ' - fuse.roamfs ' /proc/self/mountinfo"
    check "bob cannot read alice's files in B" sh -c "! $ROAM_DESKTOP_TOOL exec B --user bob cat /home/alice/f 2>/dev/null"

    # --no-force: a process holding a file makes the detach refuse; nothing changes.
    hold_home B
    check "switch --no-force with a busy home is refused" sh -c \
        "! $ROAMCTL switch alice A --no-force 2>$T/noforce.err"
    check "the refusal names the process" grep -q "refused to detach: 1 process(es) hold files under /home/alice" "$T/noforce.err"
    check "alice is still on B" test "$(desktop_of alice)" = B
    check "and her files are still there" same_files B
    in_desktop B pkill -x sleep

    # From inside the desktop, with the desktop's own key (its copy in the
    # desktop, readable by its root only): allowed for its own user, to a
    # desktop that exists; an agent never makes the broker provision one.
    # shellcheck disable=SC2016  # expanded in the desktop
    local agent_switch='conf=/etc/roam-agent/agent.conf
        roamctl switch alice "$1" --key-file /etc/roam-agent/agent.key \
            --broker "$(sed -n "s/^broker = //p" $conf)" --broker-key "$(sed -n "s/^broker-public-key = //p" $conf)"'
    check "an agent key cannot have a desktop provisioned" refused_in_b "$agent_switch" made-up-desktop
    check "the agent is told so" grep -q "only an operator key may have the broker provision one" "$T/refused.err"
    check "and no such desktop exists" sh -c "! $ROAMCTL desktop list | grep -q made-up-desktop"
    check "the operator creates B2" ctl desktop create B2
    check "B2 connects" wait_for 30 connected B2
    check "the agent key may switch its own user" in_desktop B sh -c "$agent_switch" - B2
    check "every byte is in B2" same_files B2
    check "switch back to B" ctl switch alice B
    # A process that opened her disk through the export, not the home, must
    # let go at a clean detach too (it wrote on until roamfs was killed).
    hold_export B
    check "switch to B2 with the export held open in B" ctl switch alice B2
    check "the process holding the export is gone from B" sh -c "! $ROAM_DESKTOP_TOOL exec B pgrep -x sleep"
    check "switch back to B again" ctl switch alice B

    check "the intruder's key is refused" sh -c \
        "! $ROAMCTL status --timeout 2 --key-file $T/keys/intruder.key 2>$T/intruder.err"
    check "the refusal is one sentence" grep -q "did not answer" "$T/intruder.err"
    check "bob gets a disk" ctl disk create bob
    check "an agent key cannot switch another user" sh -c \
        "! $ROAMCTL switch bob B --timeout 10 --key-file $T/state/desktops/B.key 2>$T/agent.err"
    check "the agent is told why" grep -q "may only switch the user of its own desktop" "$T/agent.err"
    check "a desktop in use is refused to another user" sh -c "! $ROAMCTL switch bob B 2>/dev/null"

    # Damage: B's health check fails; the broker moves alice to a spare.
    break_desktop B
    check "damage on B moves alice" wait_for 30 moved_from alice B
    local c
    c=$(desktop_of alice)
    check "B is marked damaged" sh -c "$ROAMCTL desktop list | grep -E '^B +damaged'"
    check "alice's files are in $c" same_files "$c"
    check "B no longer has alice's home" not_attached_in B

    # SIGKILL of the agent of alice's desktop: declared dead, fenced, moved.
    hold_home "$c"
    as_user "$c" alice sh -c 'echo before > /home/alice/before-kill && sync'
    local killed_at
    killed_at=$(date +%s%N)
    kill -KILL "$(desktop agent-pid "$c")"
    check "SIGKILLed agent: alice moves off $c" wait_for 30 moved_from alice "$c"
    log "failover after the SIGKILL took $((($(date +%s%N) - killed_at) / 1000000)) ms"
    local d
    d=$(desktop_of alice)
    check "alice's files are in $d" same_files "$d"
    check "$c is fenced" fenced "$c"

    # SIGSTOP: same, and the agent stays fenced once it runs again.
    hold_home "$d"
    local agent
    agent=$(desktop agent-pid "$d")
    killed_at=$(date +%s%N)
    kill -STOP "$agent"
    check "SIGSTOPped agent: alice moves off $d" wait_for 30 moved_from alice "$d"
    log "failover after the SIGSTOP took $((($(date +%s%N) - killed_at) / 1000000)) ms"
    local e
    e=$(desktop_of alice)
    check "alice's files are in $e" same_files "$e"
    check "$d is fenced" fenced "$d"
    kill -CONT "$agent"
    check "$d's agent reconnects" wait_for 30 connected "$d"
    check "$d's agent unmounts its fenced home" wait_for 30 sh -c "! $ROAM_DESKTOP_TOOL exec $d mountpoint -q /home/alice"
    as_user "$d" alice sh -c "echo x > /home/alice/late-$d" 2>/dev/null
    check "nothing $d writes later reaches alice's disk" sh -c \
        "! $ROAMCTL log $(mount_of alice) | grep -q late-$d && ! $ROAM_DESKTOP_TOOL exec $e test -e /home/alice/late-$d"
    check "the write made before the kill survived" as_user "$e" alice grep -q before /home/alice/before-kill

    ctl audit >"$T/audit"
    cat "$T/audit"
    check "the audit lists the 9 switches that succeeded" test "$(grep -c ' ok ' "$T/audit")" = 9
    check "and the refused one" grep -q "refused to detach" "$T/audit"
    check "the audit shows the dead desktops fenced" sh -c \
        "$ROAMCTL audit --json | grep '\"reason\": \"dead\"' | grep -c 'fenced=' | grep -qx 2"
    finish
}

main "$@"
