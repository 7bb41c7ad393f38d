#!/usr/bin/env bash
# Remote attach, first slice (docs/remote.md): a roamfs on the storage node
# serves alice's disk with --remote-listen at the host's end of desktop R1's
# veth pair; in R1 (its own network, root and user namespaces, /dev/fuse),
# the agent's `remote` mount driver (roam-agent mount-remote) mounts it at
# /home/alice and relays. alice works there; the op log names her uid, her
# pid as R1 sees it and her process's name; a restore on the storage node is
# seen in R1 at once; another key is refused; after `roamctl remote fence`
# nothing R1 sends reaches the store; detach unmounts, and a new mount works;
# a hostile desktop's fuzzed frames hurt neither roamfs nor its answers, nor
# bob's disk, served to R1 by a roamfs of its own meanwhile.
# The broker only provisions R1 here; e2e-remote-switch has the broker serve
# remote desktops itself.
source "$(dirname "$0")/lib.sh"

RPORT=$((PORT + 1))

pub_of() { sed -n 's/^public = //p' "$1"; }  # the hex public key in a key file

remote_mounted() {  # remote_mounted DESKTOP PATH: a FUSE mount of the remote driver there
    in_desktop "$1" awk -v p="$2" '$5 == p && $0 ~ / - fuse\.roamfs roamfs:remote / { f = 1 } END { exit !f }' \
        /proc/self/mountinfo
}

not_mounted() { ! remote_mounted "$@"; }

fails_in() { ! as_user "$@" 2>/dev/null; }  # fails_in DESKTOP USER COMMAND...

absent() { ! as_user "$1" "$2" test -e "$3"; }  # absent DESKTOP USER PATH

answers() {  # answers DESKTOP PATH: ls PATH as alice ends within 10 s, in success or error
    as_user "$1" alice timeout 10 ls "$2" >/dev/null 2>&1
    [[ $? -ne 124 ]]
}

# Runs the remote driver in R1 as its root, in the background: mounts EXPORT
# (default: alice's roamfs) at HOME with KEY_FILE (a path inside R1) until
# SIGTERM; its pid (in R1) goes to /tmp/NAME.pid there.
mount_remote() {  # mount_remote DESKTOP HOME KEY_FILE NAME [EXPORT]
    in_desktop "$1" sh -c 'echo $$ >/tmp/'"$4"'.pid; exec roam-agent mount-remote "$0" "$1" --key-file "$2" --desktop R1' \
        "${5:-$ENDPOINT#$ROAMFS_PUB}" "$2" "$3" >"$T/$4.log" 2>&1 &
}

# Serves bob's disk (a store of its own) to R1 too, at /mnt/bob, through a
# roamfs on the next port that allows another key of R1's.
serve_bob() {  # serve_bob HOST_END
    local bob_endpoint="tcp://$1:$((RPORT + 1))"
    "$ROAMCTL" mkfs "$T/bob-store" >/dev/null && ctl keygen "$T/keys/bobfs.key" >/dev/null &&
        ctl keygen "$T/keys/bobdesk.key" >/dev/null || return 1
    mkdir -p "$T/mnt/bob"
    "$ROAMFS" "$T/bob-store" "$T/mnt/bob" --remote-listen "$bob_endpoint" --remote-key-file "$T/keys/bobfs.key" \
        --remote-allow "$(pub_of "$T/keys/bobdesk.key")" || return 1
    in_desktop R1 sh -c 'cat >/tmp/bobdesk.key && chmod 600 /tmp/bobdesk.key && mkdir -p /mnt/bob' \
        <"$T/keys/bobdesk.key"
    mount_remote R1 /mnt/bob /tmp/bobdesk.key bob "$bob_endpoint#$(pub_of "$T/keys/bobfs.key")"
    wait_for 20 remote_mounted R1 /mnt/bob && in_desktop R1 chown bob:bob /mnt/bob
}

lines_in() {  # lines_in FILE N: FILE (bob's, read in R1) has exactly N lines
    [[ "$(as_user R1 bob sh -c 'wc -l <"$0"' "$1")" == "$2" ]]
}

# The JSON log record of the newest operation on PATH (alice's store).
last_op() {  # last_op PATH
    ctl log "$STORE" --json --path "$1" | tail -n 1
}

has() {  # has TEXT NEEDLE
    [[ "$1" == *"$2"* ]] || { log "'$2' not in: $1"; return 1; }
}

restore_fails() {  # restore_fails ARGS...: roamctl restore fails; its stderr in $T/sync-restore.err
    ! ctl restore "$@" 2>"$T/sync-restore.err"
}

reads() {  # reads DESKTOP USER FILE EXPECTED
    local got
    got=$(as_user "$1" "$2" cat "$3" 2>&1)
    [[ "$got" == "$4" ]] || { log "$2 in $1 read '$got' from $3, not '$4'"; return 1; }
}

main() {
    setup_broker "" "--fuse" || { fail "setup"; finish; }
    start_broker || finish
    ctl user add alice >/dev/null && ctl disk create alice >/dev/null
    STORE="$T/state/disks/alice"
    check "desktop R1 (with /dev/fuse) is created" ctl desktop create R1
    check "R1's agent connects over its veth pair" wait_for 30 connected R1
    local slot host_end
    slot=$(cat "$T/desktops/R1/slot")
    host_end=$(ip -4 -o addr show dev "rd${slot}h" | awk '{ sub(/\/.*/, "", $4); print $4 }')
    ENDPOINT="tcp://$host_end:$RPORT"

    # The storage node: alice's roamfs, mounted on the host as usual, and
    # listening for R1's agent key only.
    ctl keygen "$T/keys/roamfs.key" >/dev/null
    ROAMFS_PUB=$(pub_of "$T/keys/roamfs.key")
    local r1_pub
    r1_pub=$(pub_of "$T/state/desktops/R1.key")
    mkdir -p "$T/mnt/alice"
    check "roamfs serves alice's disk at $ENDPOINT" "$ROAMFS" "$STORE" "$T/mnt/alice" \
        --remote-listen "$ENDPOINT" --remote-key-file "$T/keys/roamfs.key" --remote-allow "$r1_pub"

    mount_remote R1 /home/alice /etc/roam-agent/agent.key main
    check "the remote driver mounts alice's home in R1" wait_for 20 remote_mounted R1 /home/alice
    check "R1's root gives alice her home" in_desktop R1 chown alice:alice /home/alice
    check "alice creates and writes" as_user R1 alice sh -c 'echo hello >/home/alice/f'
    check "alice reads it back" reads R1 alice /home/alice/f hello
    check "alice renames it" as_user R1 alice mv /home/alice/f /home/alice/g
    check "alice makes a directory" as_user R1 alice mkdir /home/alice/d
    check "alice writes 1 MiB in it" as_user R1 alice sh -c \
        'head -c 1048576 /dev/urandom >/home/alice/d/big && sync && cmp /home/alice/d/big /home/alice/d/big'
    check "alice unlinks" as_user R1 alice rm /home/alice/g
    check "the unlinked file is gone" absent R1 alice /home/alice/g
    check "the data is on the storage node" cmp -s <(as_user R1 alice cat /home/alice/d/big) "$T/mnt/alice/d/big"

    # Who did it, as R1 saw it: sh writes by-shell itself (a redirection).
    local shell_pid rec
    shell_pid=$(as_user R1 alice sh -c 'echo $$; echo x >/home/alice/by-shell')
    rec=$(last_op /by-shell)
    check "the op log names alice's uid" has "$rec" '"uid":1000'
    check "the op log names the pid R1 gave her shell ($shell_pid)" has "$rec" "\"pid\":$shell_pid,"
    check "the op log names her process (sh)" has "$rec" '"comm":"sh"'
    check "the op log names her desktop (R1)" has "$rec" '"desktop":"R1"'

    # A restore on the storage node is seen in R1 at once.
    as_user R1 alice sh -c 'echo v1 >/home/alice/r'
    as_user R1 alice sh -c 'echo v2 >/home/alice/r'
    check "R1 reads v2 (cached)" reads R1 alice /home/alice/r v2
    local seq
    # v2 began with the truncation of v1 (echo's O_TRUNC): just before it, r held v1.
    seq=$(ctl log "$STORE" --json --path /r | grep '"details":"size 0"' | tail -n 1 | sed 's/^{"seq":\([0-9]*\),.*/\1/')
    check "roamctl restore on the storage node" ctl restore "$STORE" /r --before-op "$seq"
    check "R1 reads v1 at once (the invalidation travelled)" reads R1 alice /home/alice/r v1


    # Another key is refused: no session, no mount.
    ctl keygen "$T/keys/other.key" >/dev/null
    in_desktop R1 sh -c 'cat >/tmp/other.key && chmod 600 /tmp/other.key' <"$T/keys/other.key"
    in_desktop R1 mkdir -p /mnt/other
    mount_remote R1 /mnt/other /tmp/other.key other
    local other_pid=$!
    wait "$other_pid"
    check "a second key is refused" grep -q "opened no session" "$T/other.log"
    check "and mounts nothing" not_mounted R1 /mnt/other
    check "R1 still reads alice's file" reads R1 alice /home/alice/r v1

    # Fence: from the reply on, nothing R1 sends reaches the store or the log,
    # though its connection (and key) stay.
    check "roamctl remote fence" ctl remote fence "$STORE"
    check "alice's write in R1 fails after the fence" fails_in R1 alice sh -c 'echo late >/home/alice/late'
    check "and so does her read" fails_in R1 alice cat /home/alice/r
    check "the op log has no trace of the late write" sh -c "! $ROAMCTL log '$STORE' | grep -q /late"
    check "R1's key is allowed again, in epoch 2" ctl remote allow "$STORE" "$r1_pub" 2
    check "R1's fenced mount stays dead (a new session needs a new mount)" fails_in R1 alice cat /home/alice/r
    check "an older epoch is refused" sh -c "! $ROAMCTL remote allow '$STORE' '$r1_pub' 1 2>/dev/null"

    # Detach: SIGTERM to the driver syncs and unmounts; a new mount works.
    check "detach" in_desktop R1 sh -c 'kill -TERM "$(cat /tmp/main.pid)"'
    check "the home is unmounted" wait_for 20 not_mounted R1 /home/alice
    # R1's agent looks for fenced homes under /home on a thread of its own
    # and unmounts what it found at its next heartbeat: the home fenced above
    # must not take this new mount at the same path with it (it did about one
    # run in five, before the agent compared mount ids).
    mount_remote R1 /home/alice /etc/roam-agent/agent.key again
    check "R1 mounts alice's home again" wait_for 20 remote_mounted R1 /home/alice
    sleep 1.5  # three heartbeats: a look that began before the remount has been acted on
    check "the agent's look for fenced homes leaves the new mount alone" remote_mounted R1 /home/alice
    check "and reads her file" reads R1 alice /home/alice/r v1
    check "detach again" in_desktop R1 sh -c 'kill -TERM "$(cat /tmp/again.pid)"'
    check "the home is unmounted again" wait_for 20 not_mounted R1 /home/alice

    # An idle desktop cut off from the storage node notices (ZMTP heartbeats,
    # protocol/remote.h): its relay aborts the mount, rather than the next
    # process to touch it hanging on a connection TCP still thinks is up.
    mount_remote R1 /home/alice /etc/roam-agent/agent.key idle
    check "R1 mounts alice's home for an idle cut" wait_for 20 remote_mounted R1 /home/alice
    ip link set "rd${slot}h" down
    check "cut off and idle, R1's relay notices within 15 s" wait_for 15 grep -q "lost the connection" "$T/idle.log"
    ip link set "rd${slot}h" up
    check "and R1's home answers rather than hangs" answers R1 /home/alice
    in_desktop R1 sh -c 'kill -TERM "$(cat /tmp/idle.pid)"'
    check "the dead mount is unmounted" wait_for 20 not_mounted R1 /home/alice
    check "R1's agent connects again" wait_for 30 connected R1

    # A restore asks the attached desktop to write back what its kernel
    # caches first (kSync), and waits for it: dirty pages written back after
    # the restore would land over it. A desktop that never answers makes the
    # restore fail, changing nothing. (A desktop played by remote-probe.)
    local moment
    moment=$(date +@%s.%N)
    sleep 0.1
    echo later >"$T/mnt/alice/s"
    "$ROAM_REMOTE_PROBE" --sync answer "$ENDPOINT#$ROAMFS_PUB" "$T/state/desktops/R1.key" >"$T/sync.log" 2>&1 &
    local syncer=$!
    check "a desktop session opens" wait_for 10 grep -q "session open" "$T/sync.log"
    check "a restore waits for the desktop's kSynced, then restores" ctl restore "$STORE" /s --at "$moment"
    check "the desktop was asked to write back first" wait "$syncer"
    check "the restore is done" test ! -e "$T/mnt/alice/s"
    echo later >"$T/mnt/alice/s"
    "$ROAM_REMOTE_PROBE" --sync ignore "$ENDPOINT#$ROAMFS_PUB" "$T/state/desktops/R1.key" >"$T/sync.log" 2>&1 &
    syncer=$!
    check "a desktop session opens again" wait_for 10 grep -q "session open" "$T/sync.log"
    check "a desktop that never writes back: the restore fails" restore_fails "$STORE" /s --at "$moment"
    check "and says why" grep -q "did not write back its cached changes" "$T/sync-restore.err"
    check "and changes nothing" test -e "$T/mnt/alice/s"
    check "that desktop was asked too" wait "$syncer"

    # A hostile desktop with the allowed key: fuzzed frames, forged handles,
    # an oversized frame (tests/e2e/remote_probe.cc).
    check "roamfs serves the disk on the host" test -s "$T/mnt/alice/d/big"
    # Meanwhile bob, in R1 too, appends 200 lines to his own disk.
    check "bob's disk is served to R1 by a roamfs of its own" serve_bob "$host_end"
    as_user R1 bob sh -c 'i=0; while [ $i -lt 200 ]; do echo "line $i" >>/mnt/bob/log; i=$((i + 1)); sleep 0.01; done' \
        >"$T/bob-writer.log" 2>&1 &
    local bob_writer=$!
    # (The probe's random requests may change alice's disk: it is the desktop's own.)
    check "a hostile desktop's frames hurt neither roamfs nor its answers" \
        "$ROAM_REMOTE_PROBE" "$ENDPOINT#$ROAMFS_PUB" "$T/state/desktops/R1.key"
    check "roamfs still serves the disk on the host" ls "$T/mnt/alice/"
    check "and the store is consistent" ctl scrub "$STORE"
    check "bob's writer, working meanwhile, saw no error" wait "$bob_writer"
    check "all 200 of bob's lines are on his disk" lines_in /mnt/bob/log 200
    check "bob's store is consistent" ctl scrub "$T/mnt/bob"
    in_desktop R1 sh -c 'kill -TERM "$(cat /tmp/bob.pid)"'
    wait_for 20 not_mounted R1 /mnt/bob
    umount "$T/mnt/bob"
    umount "$T/mnt/alice"
    finish
}

main "$@"
