#!/usr/bin/env bash
# Remote attach, second slice (docs/remote.md): the broker serves alice's
# disk to remote desktops. R1 and R2 are container desktops with /dev/fuse
# whose agents register the `remote` mount driver; they reach the storage
# node only over their veth pairs. `roamctl switch` starts each epoch's
# roamfs with --remote-listen on alice's port, allowing that desktop's agent
# key only, and the agent mounts tcp://HOST:PORT#KEY (HOST: its broker's).
# alice's files written in R1 are read byte for byte in R2, and the op log
# names her uid and process. Fencing: while alice appends a marker every
# 50 ms in the desktop she is on, it is silenced (all of its processes
# SIGSTOPped; its veth pair cut; its agent SIGKILLed) and she moves to the
# other (a forced switch; the broker's failover); once the old desktop runs
# again, not a byte of it reaches the store or the op log. Damage: R1's
# health check fails, and the broker moves alice to a remote spare it
# provisions (R2's agent is dead by then).
source "$(dirname "$0")/lib.sh"

RPORT=$((PORT + 1))
STORE="$T/state/disks/alice"

remote_mounted() {  # remote_mounted DESKTOP PATH: a FUSE mount of the remote driver there
    in_desktop "$1" awk -v p="$2" '$5 == p && $0 ~ / - fuse\.roamfs roamfs:remote / { f = 1 } END { exit !f }' \
        /proc/self/mountinfo
}

not_mounted() { ! remote_mounted "$@"; }

listening() {  # listening PORT: a roamfs of this test listens on the host at PORT
    ss -Htlnp "sport = :$1" | grep -q '"roamfs"'
}

listener_pid() {  # listener_pid PORT: the pid of the roamfs listening there
    ss -Htlnp "sport = :$1" | sed -n 's/.*"roamfs",pid=\([0-9]*\),.*/\1/p' | head -n 1
}

has() {  # has TEXT NEEDLE
    [[ "$1" == *"$2"* ]] || { log "'$2' not in: $1"; return 1; }
}

driver_of() {  # driver_of DESKTOP: the mount driver its agent registered, from roamctl desktop list
    ctl desktop list --json | tr '{' '\n' | grep "\"desktop\": \"$1\"" | sed 's/.*"driver": "\([^"]*\)".*/\1/'
}

is_remote() { [[ "$(driver_of "$1")" == remote ]]; }

sum_in() {  # sum_in DESKTOP FILE: sha256 of FILE read by alice in DESKTOP
    as_user "$1" alice sha256sum "$2" | cut -d' ' -f1
}

appended() {  # appended DESKTOP FILE N: alice's FILE in DESKTOP has at least N lines
    local n
    n=$(as_user "$1" alice sh -c 'wc -l <"$0"' "$2" 2>/dev/null) && ((n >= $3))
}

on_desktop() { [[ "$(desktop_of "$1")" == "$2" ]]; }  # on_desktop USER DESKTOP

size_in() {  # size_in DESKTOP FILE: FILE's size as alice reads it in DESKTOP
    as_user "$1" alice sh -c 'wc -c <"$0"' "$2"
}

# Every host pid in desktop ID's pid namespace (its init, agent and every
# process started in it), and the nsenter on the host of each command the
# test runs in it: util-linux's nsenter stops itself when its child stops,
# and goes on only when continued itself. Left stopped, it never reaps its
# child, and the desktop's init, which waits for every process of its
# namespace to be reaped, never ends (nor its network namespace).
desktop_pids() {  # desktop_pids ID
    local ns init
    init=$(desktop pid "$1")
    ns=$(stat -L -c %i "/proc/$init/ns/pid")
    ps -e -o pid=,pidns= | awk -v ns="$ns" '$2 == ns { print $1 }'
    pgrep -f "^nsenter -t $init " || true
}

signal_desktop() {  # signal_desktop ID SIGNAL: twice, for a child started between the look and the signal
    # shellcheck disable=SC2046
    kill -"$2" $(desktop_pids "$1") 2>/dev/null
    # shellcheck disable=SC2046
    kill -"$2" $(desktop_pids "$1") 2>/dev/null
    return 0
}

# The newest op-log record's seq (0 when the log is empty).
last_seq() {
    local rec
    rec=$(ctl log "$STORE" --json | tail -n 1)
    [[ "$rec" =~ ^\{\"seq\":([0-9]+), ]] && echo "${BASH_REMATCH[1]}" || echo 0
}

# The op-log records on PATH with a seq above SEQ.
records_after() {  # records_after SEQ PATH
    ctl log "$STORE" --json --path "$2" | while read -r rec; do
        [[ "$rec" =~ ^\{\"seq\":([0-9]+), ]] && ((BASH_REMATCH[1] > $1)) && echo "$rec"
    done
    return 0
}

# Makes DESKTOP unreachable, HOW: stop (SIGSTOP every process of it, its
# agent included), cut (its veth pair down) or kill-agent (SIGKILL).
silence() {  # silence DESKTOP HOW
    case $2 in
    stop) signal_desktop "$1" STOP ;;
    cut) ip link set "rd$(cat "$T/desktops/$1/slot")h" down ;;
    kill-agent) kill -KILL "$(desktop agent-pid "$1")" ;;
    esac
}

# Undoes silence: CONT, or the veth pair up again (its agent reconnects and
# registers); a killed agent stays dead. Then the desktop's relay has seen
# roamfs go and aborted its mount (ENOTCONN), which the agent unmounts.
revive() {  # revive DESKTOP HOW
    case $2 in
    stop) signal_desktop "$1" CONT ;;
    cut) ip link set "rd$(cat "$T/desktops/$1/slot")h" up ;;
    kill-agent) return 0 ;;
    esac
    check "$2: $1 runs again (its agent registers)" wait_for 20 connected "$1"
    check "$2: $1's dead mount of her home is unmounted" wait_for 10 not_mounted "$1" /home/alice
}

# A fenced switch of alice from FROM to TO while she appends a marker line
# to a file every 50 ms in FROM: FROM is silenced HOW, alice moves to TO (a
# forced switch that finds FROM silent; after kill-agent, the broker's
# failover), FROM comes back: from the switch on, not a byte of FROM's
# reaches the disk or the op log.
fenced_round() {  # fenced_round FROM TO HOW
    local from=$1 to=$2 how=$3 file=/home/alice/marker-$3 writer size seq
    as_user "$from" alice sh -c 'while :; do echo marker >>"$0"; sleep 0.05; done' "$file" >/dev/null 2>&1 &
    writer=$!
    check "$how: the writer appends in $from" wait_for 10 appended "$from" "$file" 5
    silence "$from" "$how"
    if [[ $how == kill-agent ]]; then
        check "$how: the broker fails alice over to $to" wait_for 15 on_desktop alice "$to"
    else
        check "$how: switch alice to $to ($from does not answer)" ctl switch alice "$to"
    fi
    size=$(size_in "$to" "$file")
    seq=$(last_seq)
    check "$how: $to reads the marker ($size bytes)" test "${size:-0}" -gt 0
    check "$how: the op log has the appends from before the switch" test -n "$(records_after 0 "${file#/home/alice}")"
    check "$how: the switch fenced $from" sh -c "$ROAMCTL audit | tail -n 1 | grep -q -e detach-timeout -e source-dead"
    revive "$from" "$how"
    sleep 1  # twenty more appends in $from, if any got through
    check "$how: the marker on the disk never grows again" test "$(size_in "$to" "$file")" == "$size"
    check "$how: the op log has no write to it after the switch" test -z "$(records_after "$seq" "${file#/home/alice}")"
    # shellcheck disable=SC2046
    kill $(pgrep -P "$writer") "$writer" 2>/dev/null
    return 0
}

main() {
    setup_broker "remote-ports = $RPORT-$((RPORT + 9))" "--fuse --mount-driver remote" || { fail "setup"; finish; }
    start_broker || finish
    ctl user add alice >/dev/null && ctl disk create alice >/dev/null
    local d
    for d in R1 R2; do
        check "desktop $d (remote driver, /dev/fuse) is created" ctl desktop create "$d"
        check "$d's agent connects over its veth pair" wait_for 30 connected "$d"
        check "$d registered the remote driver" is_remote "$d"
    done

    # Switch to R1: its roamfs serves the disk over the network.
    check "switch alice to R1" ctl switch alice R1
    check "R1 mounts alice's home through the remote driver" remote_mounted R1 /home/alice
    check "roamfs listens for R1 on alice's port" listening "$RPORT"
    check "alice writes in R1" as_user R1 alice sh -c 'echo hello >/home/alice/f && mkdir /home/alice/d'
    check "alice writes 1 MiB in R1" as_user R1 alice sh -c 'head -c 1048576 /dev/urandom >/home/alice/d/big'
    local sum
    sum=$(sum_in R1 /home/alice/d/big)
    local rec
    rec=$(ctl log "$STORE" --json --path /f | tail -n 1)
    check "the op log names alice's uid" has "$rec" '"uid":1000'
    check "the op log names her process (sh)" has "$rec" '"comm":"sh"'

    # Switch to R2: she reads it all there; R1's home is no longer her disk.
    check "switch alice to R2" ctl switch alice R2
    check "R2 mounts alice's home through the remote driver" remote_mounted R2 /home/alice
    check "alice reads her file in R2" test "$(as_user R2 alice cat /home/alice/f)" == hello
    check "alice reads her 1 MiB byte for byte in R2" test "$(sum_in R2 /home/alice/d/big)" == "$sum"
    check "R1's home is no longer her disk" not_mounted R1 /home/alice
    check "and holds none of her files" sh -c "! $ROAM_DESKTOP_TOOL exec R1 test -e /home/alice/f"

    # Fencing, three ways: all of R2 stopped, R1's veth cut, R2's agent killed.
    fenced_round R2 R1 stop
    fenced_round R1 R2 cut
    fenced_round R2 R1 kill-agent
    check "R1 still reads her 1 MiB byte for byte" test "$(sum_in R1 /home/alice/d/big)" == "$sum"

    # A broker killed and restarted adopts the remote epoch's roamfs as it is.
    local served
    served=$(listener_pid "$RPORT")
    kill -KILL "$BROKER_PID"
    start_broker || finish
    sleep 1.5  # three ticks of supervision
    check "the restarted broker adopts the roamfs serving R1 (pid ${served:-none})" \
        test -n "$served" -a "$(listener_pid "$RPORT")" == "$served"
    check "alice is still on R1" on_desktop alice R1
    check "and reads her file there" test "$(as_user R1 alice cat /home/alice/f)" == hello

    # Damage on a remote desktop: R1's health check fails; the broker ends
    # R1's epoch and serves alice's disk to a spare, provisioned as a
    # remote desktop too (R2's agent was killed above).
    local t0 spare
    t0=$(date +%s%N)
    break_desktop R1
    check "damage on R1 moves alice" wait_for 60 moved_from alice R1
    log "damage to a provisioned remote spare took $((($(date +%s%N) - t0) / 1000000)) ms"
    spare=$(desktop_of alice)
    check "R1 is marked damaged" sh -c "$ROAMCTL desktop list | grep -E '^R1 +damaged'"
    check "her new desktop ($spare) registered the remote driver" is_remote "$spare"
    check "$spare mounts her home through the remote driver" wait_for 10 remote_mounted "$spare" /home/alice
    check "alice reads her 1 MiB byte for byte in $spare" test "$(sum_in "$spare" /home/alice/d/big)" == "$sum"
    check "R1's home is no longer her disk" wait_for 10 not_mounted R1 /home/alice
    finish
}

main "$@"
