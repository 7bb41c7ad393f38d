#!/usr/bin/env bash
# End to end: `roam` in a container desktop (issue 16). alice (uid 1000) in
# desktop A lists the versions of her file and the log of her disk, restores
# a directory she deleted and a file she overwrote (--at), and undoes the
# restore; bob (uid 1001, same desktop) cannot read the past of alice's 0600
# file nor restore into her home; alice cannot restore a file that was
# root's 0600 then; a desktop with no disk of hers gets nothing; a flood of
# requests is rate limited; the broker's audit shows alice's requests; the
# operator restores and reads her log with roamctl --user from the host.
source "$(dirname "$0")/lib.sh"

roam_as() {  # roam_as USER ARGS...: roam in desktop A as USER, in their home
    local user=$1
    shift
    desktop exec A --user "$user" sh -c 'cd /home/alice && exec roam "$@"' - "$@"
}

now_at() { echo "@$(date +%s.%N)"; }

content_is() {  # content_is FILE TEXT: alice reads TEXT in /home/alice/FILE
    [[ "$(as_user A alice cat "/home/alice/$1" 2>/dev/null)" == "$2" ]]
}

refused() {  # refused USER PATTERN ARGS...: roam fails for USER and says PATTERN
    local user=$1 pattern=$2
    shift 2
    if roam_as "$user" "$@" >"$T/out" 2>&1; then log "succeeded: $(cat "$T/out")"; return 1; fi
    grep -q "$pattern" "$T/out" || { log "said: $(cat "$T/out")"; return 1; }
}

main() {
    setup_broker "history-burst = 30
history-per-second = 2" || { fail "setup"; finish; }
    start_broker || finish
    alice_in_desktop_A

    as_user A alice sh -c 'cd /home/alice && chmod 755 . && echo v1 > thesis.txt && mkdir notes &&
        echo n1 > notes/a && echo n2 > notes/b && (umask 077 && echo secret > private.txt) &&
        mkdir drop && chmod 777 drop && sync'
    in_desktop A sh -c 'echo root-only > /home/alice/rootfile && chmod 600 /home/alice/rootfile && sync'
    local t1
    t1=$(now_at)
    sleep 0.2
    as_user A alice sh -c 'cd /home/alice && echo v2 > thesis.txt && rm -r notes && sync'
    in_desktop A sh -c 'rm /home/alice/rootfile && sync'

    roam_as alice history thesis.txt >"$T/history.txt" 2>&1
    check "roam history lists alice's versions" test "$(grep -c /thesis.txt "$T/history.txt")" -ge 2
    roam_as alice log >"$T/log.txt" 2>&1
    check "roam log shows the removal of notes/a" grep -q "unlink.*/notes/a" "$T/log.txt"
    roam_as alice log --by rm >"$T/log-rm.txt" 2>&1
    check "roam log --by rm shows only rm's changes" sh -c "grep -q 'rm\[' $T/log-rm.txt && ! grep -q 'sh\[' $T/log-rm.txt"

    check "alice restores her deleted directory" roam_as alice restore notes --at "$t1"
    check "notes/a is back" content_is notes/a n1
    check "notes/b is back" content_is notes/b n2
    check "and hers" test "$(in_desktop A stat -c %u /home/alice/notes/a)" = 1000
    check "alice restores her file as it was" roam_as alice restore thesis.txt --at "$t1"
    check "thesis.txt is v1 again" content_is thesis.txt v1
    check "roam undo-restore" roam_as alice undo-restore
    check "thesis.txt is v2 again" content_is thesis.txt v2
    check "the restore is logged as alice's" sh -c "$ROAMCTL log $(mount_of alice) --op restore --json | grep -q '\"uid\":1000'"

    check "alice cannot restore what was root's 0600 file" refused alice "may not read /rootfile" \
        restore rootfile --at "$t1"
    check "and it is not back" sh -c "! $ROAM_DESKTOP_TOOL exec A test -e /home/alice/rootfile"
    check "bob cannot list the versions of alice's 0600 file" refused bob "could never read /private.txt" \
        history /home/alice/private.txt
    check "bob cannot restore it, not even where he may write" refused bob "may not read /private.txt" \
        restore /home/alice/private.txt --at "$t1" --to /home/alice/drop/stolen
    check "nothing was written for bob" sh -c "! $ROAM_DESKTOP_TOOL exec A test -e /home/alice/drop/stolen"
    check "bob cannot restore into alice's home" refused bob "may not write and search /\$" \
        restore /home/alice/thesis.txt --at "$t1"
    check "thesis.txt is still v2" content_is thesis.txt v2

    check "desktop create B (no disk of alice's)" ctl desktop create B
    check "B connects" wait_for 30 connected B
    check "alice in B has no disk to act on" sh -c "! $ROAM_DESKTOP_TOOL exec B --user alice roam log 2>$T/b.err &&
        grep -q 'no disk is attached to desktop B' $T/b.err"

    as_user A alice sh -c 'for i in $(seq 1 80); do roam log --limit 1 >/dev/null; done' \
        >"$T/flood.out" 2>&1
    check "a flood of requests is rate limited" grep -q "rate limited, retry in [0-9]* s" "$T/flood.out"

    ctl audit --json >"$T/audit.json"
    check "the audit shows alice's restore from A" sh -c "grep '\"switch\": \"history\"' $T/audit.json |
        grep '\"from\": \"A\"' | grep 'uid 1000' | grep -q 'restore /notes --at'"
    check "and bob's refusal" sh -c "grep 'uid 1001' $T/audit.json | grep -q 'may not read'"

    check "the operator restores alice's file through the broker" ctl restore --user alice /thesis.txt --at "$t1"
    check "thesis.txt is v1 for alice" content_is thesis.txt v1
    check "the operator reads alice's log through the broker" sh -c "$ROAMCTL log --user alice | grep -q '/notes/a'"
    finish
}

main "$@"
