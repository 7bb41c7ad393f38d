#!/usr/bin/env bash
# End to end: `roam undo --by` in a container desktop (issue 16). alice (uid
# 1000) has 500 files in ~/docs and 20 in ~/work. A "ransomware" process (a
# program of its own name, `ransom`) encrypts the 500 — half rewritten in
# place, half written to NAME.locked with the original removed — while
# alice edits her 20 in another process. It also encrypts ~/work/shared.txt,
# which alice edits after it. `roam undo --by ransom --dry-run` lists every
# path and changes nothing; `roam undo --by ransom` brings all 500 back byte
# for byte (sha256), keeps her 20 edits and her shared.txt, and puts the
# shared.txt ransom found beside it; `roam undo-restore` takes the undo back
# and a second one redoes it. The operator's dry run through the broker
# (roamctl undo --user) agrees.
source "$(dirname "$0")/lib.sh"

roam_as() {  # roam_as USER ARGS...: roam in desktop A as USER, in their home
    local user=$1
    shift
    desktop exec A --user "$user" sh -c 'cd /home/alice && exec roam "$@"' - "$@"
}

sums() {  # sums DIR: sha256 of every file in alice's ~/DIR, sorted by name
    as_user A alice sh -c "cd /home/alice/$1 && sha256sum * | sort -k 2"
}

docs_differ() { ! diff -q "$T/docs.before" <(sums docs) >/dev/null; }

undo_ransom() { roam_as alice undo --by ransom >"$T/undo.txt" 2>&1; }

# The files: sizes from 1 byte to 64 KiB, random content.
MAKE_FILES='
import os, random
random.seed(16)
os.chdir("/home/alice")
os.makedirs("docs"); os.makedirs("work")
for i in range(500):
    with open("docs/doc%03d.bin" % i, "wb") as f:
        f.write(os.urandom(random.choice([1, 100, 4096, 5000, 65536])))
for i in range(20):
    with open("work/w%02d.txt" % i, "w") as f:
        f.write("draft %d\n" % i)
with open("work/shared.txt", "w") as f:
    f.write("shared v1\n")
'

# The ransomware: XOR every byte; even files in place, odd ones to .locked.
RANSOM='
import os
os.chdir("/home/alice")
names = sorted(os.listdir("docs"))
for i, name in enumerate(names):
    path = "docs/" + name
    with open(path, "rb") as f:
        data = bytes(b ^ 0x5A for b in f.read())
    if i % 2 == 0:
        with open(path, "wb") as f:
            f.write(data)
    else:
        with open(path + ".locked", "wb") as f:
            f.write(data)
        os.unlink(path)
with open("work/shared.txt", "w") as f:
    f.write("LOCKED\n")
'

main() {
    setup_broker "history-burst = 30
history-per-second = 2" || { fail "setup"; finish; }
    start_broker || finish
    alice_in_desktop_A

    check "alice makes 500 docs and 20 work files" as_user A alice sh -c \
        "chmod 755 /home/alice && python3 -c '$MAKE_FILES' && sync"
    sums docs >"$T/docs.before"
    check "500 docs" test "$(wc -l <"$T/docs.before")" -eq 500

    # ransom: its own process name (comm is the name it was executed by).
    check "ransom runs while alice edits her work" as_user A alice sh -c "
        ln -sf /usr/bin/python3 /tmp/ransom &&
        /tmp/ransom -c '$RANSOM' &
        cd /home/alice/work && for i in \$(seq -w 0 19); do echo \"edit \$i\" >> w\$i.txt; sleep 0.02; done
        wait \$! && sleep 0.2 && echo 'shared v2 (alice)' > shared.txt && sync"
    sums work >"$T/work.edited"
    check "the docs are encrypted" docs_differ
    check "ransom's changes are logged as its own" test "$(ctl log "$(mount_of alice)" --json |
        grep -c '"comm":"ransom"')" -ge 500

    roam_as alice undo --by ransom --dry-run >"$T/dry.txt" 2>&1
    check "the dry run lists all 500 docs" test "$(grep -c '^[+~] /docs/doc[0-9]*\.bin\($\|  \)' "$T/dry.txt")" -eq 500
    check "and the 250 .locked files that go" test "$(grep -c '^- /docs/.*\.locked$' "$T/dry.txt")" -eq 250
    check "and shared.txt, kept" grep -q '^= /work/shared.txt  kept as other processes left it' "$T/dry.txt"
    check "and says it is a dry run" grep -q "^dry run: undoing the changes of ransom would make" "$T/dry.txt"
    check "the dry run changed nothing" docs_differ

    ctl undo --user alice --by ransom --dry-run >"$T/op-dry.txt" 2>&1
    check "the operator's dry run through the broker agrees" \
        test "$(grep -c '^[-+~=] ' "$T/op-dry.txt")" -eq "$(grep -c '^[-+~=] ' "$T/dry.txt")"

    check "roam undo --by ransom" undo_ransom
    log "$(tail -1 "$T/undo.txt")"
    check "all 500 docs are back, byte for byte" diff "$T/docs.before" <(sums docs)
    check "no .locked file is left" test "$(as_user A alice ls /home/alice/docs | grep -c locked)" -eq 0
    check "alice's 20 edits and her shared.txt are intact" diff "$T/work.edited" <(sums work | grep -v before-ransom)
    check "shared.txt as ransom found it is beside it" test \
        "$(as_user A alice sh -c 'cat /home/alice/work/shared.txt.before-ransom-*')" = "shared v1"
    check "the undo is one logged restore, alice's" test "$(ctl log "$(mount_of alice)" --op restore --json |
        grep -c '"uid":1000')" -eq 1

    check "roam undo-restore takes the undo back" roam_as alice undo-restore
    check "the docs are encrypted again" docs_differ
    check "a second undo-restore redoes the undo" roam_as alice undo-restore
    check "all 500 docs are back again" diff "$T/docs.before" <(sums docs)
    check "alice's edits are still intact" diff "$T/work.edited" <(sums work | grep -v before-ransom)
    finish
}

main "$@"
