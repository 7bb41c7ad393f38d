#!/usr/bin/env bash
# 100 switches back and forth between two desktops while a writer of alice's
# in the current desktop appends numbered lines, fsyncing each one and only
# then acknowledging it on its standard output, which the host appends to a
# file outside the disk. The detach kills the writer; the next one continues
# in the other desktop. At the end every acknowledged line must be on the
# disk. ROAM_SOAK_SWITCHES changes the count.
source "$(dirname "$0")/lib.sh"

SWITCHES=${ROAM_SOAK_SWITCHES:-100}

write_forever() {  # write_forever DESKTOP FIRST_NUMBER
    as_user "$1" alice python3 -c '
import os, sys
fd = os.open("/home/alice/log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
n = int(sys.argv[1])
while True:
    os.write(fd, b"%d\n" % n)
    os.fsync(fd)
    sys.stdout.write("%d\n" % n)
    sys.stdout.flush()
    n += 1
' "$2" >>"$T/acked" 2>/dev/null &
}

acked_some_since() {  # acked_some_since N: the writer acknowledged a line numbered >= N
    [[ -s "$T/acked" ]] && (($(tail -n 1 "$T/acked") >= $1))
}

main() {
    setup_broker || { fail "setup"; finish; }
    start_broker || finish
    ctl user add alice >/dev/null && ctl disk create alice >/dev/null
    ctl desktop create A >/dev/null && ctl desktop create B >/dev/null
    check "A and B connect" wait_for 30 sh -c "$(declare -f connected ctl); connected A && connected B"
    check "switch alice to A" ctl switch alice A
    local i here=A there=B next=1 failed_switches=0
    : >"$T/acked"
    for ((i = 1; i <= SWITCHES; i++)); do
        write_forever "$here" "$next"
        wait_for 20 acked_some_since "$next" || { fail "no write acknowledged in $here (switch $i)"; break; }
        ctl switch alice "$there" >/dev/null || failed_switches=$((failed_switches + 1))
        next=$(($(tail -n 1 "$T/acked") + 1))
        local t=$here
        here=$there
        there=$t
    done
    check "$SWITCHES switches succeeded" test "$failed_switches" = 0
    as_user "$here" alice cat /home/alice/log >"$T/on-disk"
    local lost
    lost=$(sort -n "$T/acked" | comm -23 - <(sort -n "$T/on-disk" | uniq) | wc -l)
    log "$(wc -l <"$T/acked") writes acknowledged, $(wc -l <"$T/on-disk") lines on the disk, $lost lost"
    check "no acknowledged write is lost" test "$lost" = 0
    finish
}

main "$@"
