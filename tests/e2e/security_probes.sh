# shellcheck shell=sh
# Attacks on the storage node, run by tests/e2e/test_security.sh inside a
# desktop (as its root and as an ordinary user) with `sh -s -- NAME=VALUE...`,
# and once on the host as root, where each one must succeed (that run shows
# that every probe detects a success). Prints one line per probe:
#   PROBE <name> blocked|SUCCEEDED: <what happened>
# and nothing else on standard output. Harmless where it succeeds: it reads,
# signals with signal 0 (the permission check of kill(2), nothing delivered),
# aborts only the connections it is given, and removes the device node it
# makes.
#
# Parameters (NAME=VALUE arguments):
#   STATE RUN KEYS     the broker's state and run directories, the test's keys
#   STORE              alice's store
#   OWN_STORE          the store of this desktop's own user (its mount is allowed)
#   SECRETS            secret keys (hex) of the broker, desktop A and the operator
#   ALICE_MARK         text only alice's files hold
#   SEARCH             where to search file contents ("/" in a desktop)
#   CONNECTIONS        FUSE connection numbers to abort
#   ROAMFS_PIDS BROKER_PID   host pids
#   CONTROL_DIRS       the control socket directories of the disks (STORE/control)
#   DISK_DEVICE        major:minor of the storage node's disk
#   FILL_DIR QUOTA_MIB  a directory on the own user's disk, whose quota is
#                      QUOTA_MIB (on the host: a directory of the volume)
for assignment in "$@"; do export "${assignment?}"; done

probe() {  # probe NAME COMMAND...: runs the attack; success of COMMAND = the attack worked
    name=$1
    shift
    if out=$("$@" 2>&1); then
        echo "PROBE $name SUCCEEDED: $(echo "$out" | head -n 1)"
    else
        echo "PROBE $name blocked: $(echo "$out" | tail -n 1)"
    fi
}

readable() {  # readable FILE...: some FILE gives bytes
    for f in "$@"; do
        [ "$(head -c 64 "$f" 2>/dev/null | wc -c)" -gt 0 ] && { echo "read $f"; return 0; }
    done
    echo "none of $# files readable"
    return 1
}

# Any file under SEARCH (not /proc, /sys, /dev or the read-only system /usr)
# that contains one of the strings.
contents_found() {  # contents_found STRING...
    pattern=$(printf '%s\n' "$@")
    hit=$(find "$SEARCH" \( -path /proc -o -path /sys -o -path /dev -o -path /usr \) -prune -o \
        -type f -size -64M -print0 2>/dev/null | xargs -0 -r grep -lsF -e "$pattern" 2>/dev/null | head -n 1)
    [ -n "$hit" ] && { echo "found in $hit"; return 0; }
    echo "not found under $SEARCH"
    return 1
}

store_files() {  # every file of every store under STATE/disks
    find "$STATE/disks" -type f 2>/dev/null
}

read_any_store() {
    # shellcheck disable=SC2046  # one argument per file
    readable $(store_files) "$STATE/disks/alice/data.mdb"
}

# A FUSE mount of a user disk other than this desktop's own user's.
other_disk_mounted() {
    m=$(awk -v own="roamfs:$OWN_STORE" '$0 ~ / - fuse\.roamfs / {
            for (i = 7; $i != "-"; i++) {}
            if ($(i + 2) != own) { print $5 " " $(i + 2); exit }
        }' /proc/self/mountinfo)
    [ -n "$m" ] && { echo "mounted: $m"; return 0; }
    echo "no other disk in the mount table"
    return 1
}

abort_connection() {  # through /sys/fs/fuse/connections, or a fusectl mounted here
    dirs=/sys/fs/fuse/connections
    fc=$(mktemp -d 2>/dev/null) && mount -t fusectl fusectl "$fc" 2>/dev/null && dirs="$dirs $fc"
    done_any=1
    for d in $dirs; do
        for c in $CONNECTIONS; do
            if [ -e "$d/$c/abort" ] && (echo 1 >"$d/$c/abort") 2>/dev/null; then
                echo "aborted connection $c through $d"
                done_any=0
            fi
        done
    done
    [ -n "$fc" ] && { umount "$fc" 2>/dev/null; rmdir "$fc" 2>/dev/null; }
    [ "$done_any" = 0 ] || echo "no connection of $CONNECTIONS could be aborted through $dirs"
    return "$done_any"
}

signal() {  # signal COMM PID...: may we signal a process COMM, found by pid or by name?
    comm=$1
    shift
    for p in "$@"; do
        [ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$comm" ] && kill -0 "$p" 2>/dev/null &&
            { echo "may signal $comm $p"; return 0; }
    done
    pkill -0 -x "$comm" 2>/dev/null && { echo "may signal a $comm found by name"; return 0; }
    echo "no $comm to signal"
    return 1
}

# control_socket connect: connecting to a disk's control socket;
# control_socket squat: binding a socket where roamfs keeps its control socket
# (a new name beside the live one, which is left alone): who can, could have
# bound the control socket itself before roamfs started.
control_socket() {
    # shellcheck disable=SC2086  # one argument per directory
    python3 - "$1" $CONTROL_DIRS <<'EOF'
import os, socket, sys
mode, err = sys.argv[1], "none given"
for d in sys.argv[2:]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if mode == "connect":
            s.connect(d + "/socket")
            print("connected to " + d + "/socket")
        else:
            s.bind(d + "/squat.%d" % os.getpid())
            os.unlink(d + "/squat.%d" % os.getpid())
            print("bound a socket in " + d)
        sys.exit(0)
    except OSError as e:
        err = e
    finally:
        s.close()
print("no control socket could be %s: %s" % ("reached" if mode == "connect" else "bound", err))
sys.exit(1)
EOF
}

make_disk_node() {
    node=$(mktemp -u "${TMPDIR:-/tmp}/disk.XXXXXX")
    if mknod "$node" b "${DISK_DEVICE%:*}" "${DISK_DEVICE#*:}" 2>/dev/null; then
        rm -f "$node"
        echo "made a device node of the storage node's disk ($DISK_DEVICE)"
        return 0
    fi
    echo "mknod of $DISK_DEVICE refused"
    return 1
}

# Writes 4 times the quota, fsync'd: the attack works if all of it was
# accepted. The file goes again either way.
fill_past_quota() {
    f="$FILL_DIR/fill.$(id -u)"
    if out=$(dd if=/dev/zero of="$f" bs=1M count=$((QUOTA_MIB * 4)) conv=fsync 2>&1); then
        rm -f "$f"
        echo "wrote $((QUOTA_MIB * 4)) MiB past a quota of $QUOTA_MIB MiB in $FILL_DIR"
        return 0
    fi
    rm -f "$f"
    echo "$out" | grep "^dd:" | tail -n 1
    return 1
}

# shellcheck disable=SC2086  # lists of pids
{
    probe read-alice-store readable "$STORE/data.mdb" "$STORE"/segments/*
    probe read-any-store read_any_store
    probe read-broker-secret readable "$KEYS/broker.key"
    probe read-desktop-A-key readable "$STATE/desktops/A.key"
    probe read-operator-key readable "$KEYS/operator.key"
    probe find-any-secret contents_found $SECRETS
    probe find-alice-files contents_found "$ALICE_MARK"
    probe see-run-dir ls "$RUN/exports"
    probe see-other-disks other_disk_mounted
    probe abort-fuse-connection abort_connection
    probe signal-roamfs signal roamfs $ROAMFS_PIDS
    probe signal-broker signal roam-broker $BROKER_PID
    probe reach-control-socket control_socket connect
    probe squat-control-socket control_socket squat
    probe make-disk-device make_disk_node
    probe fill-past-quota fill_past_quota
}
