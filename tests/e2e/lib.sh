# shellcheck shell=bash
# Shared by the end-to-end tests: a broker with its own state, run and key
# directories under one temporary directory, container desktops started
# through the broker's provisioner (tools/desktop/roam-desktop: own root, user
# and network namespaces, users alice 1000, bob 1001, carol 1002, dora 1003),
# and cleanup that removes every process, mount and veth pair even when a
# check fails. The tests act in a desktop as its users (as_user), as root only
# where an administrator would.
#
# Needs: ROAM_BROKER_BIN, ROAM_AGENT_BIN, ROAMCTL, ROAMFS, ROAM_DESKTOP_TOOL
# (meson sets them; tests/e2e/meson.build), and ROAM_BIN for `roam` in
# desktops. Run as root.

set -uo pipefail

E2E_FAILED=0
T=$(mktemp -d /tmp/roam-e2e.XXXXXX)
# Below the kernel's ephemeral ports (ip_local_port_range, 32768 up by
# default), which any outgoing connection may hold: a broker port picked
# there was once already in use. The tests use PORT to PORT + 10.
PORT=$((20000 + RANDOM % 12000))
export ROAM_BROKER="tcp://127.0.0.1:$PORT"
export ROAM_DESKTOP_DIR="$T/desktops"
export ROAM_EXPORTS="$T/run/exports"
export ROAM_AGENT_BIN ROAMCTL ROAM_BIN
# Desktops reach the broker over their veth pair, at the host's end of it.
ROAM_BROKER_LISTEN=${ROAM_BROKER_LISTEN:-tcp://0.0.0.0:$PORT}
DESKTOP_USERS="--user alice:1000 --user bob:1001 --user carol:1002 --user dora:1003"
# A desktop's health check fails once this file exists in it (break_desktop).
DAMAGE_MARK=/etc/roam-test-damaged
BROKER_PID=""

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }

fail() {
    log "FAIL: $*"
    E2E_FAILED=1
}

check() {  # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then log "ok: $what"; else fail "$what"; fi
}

# Polls COMMAND every 0.1 s until it succeeds or SECONDS pass.
wait_for() {  # wait_for SECONDS COMMAND...
    local limit=$1 start=$SECONDS
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS - start >= limit)) && return 1
        sleep 0.1
    done
}

ctl() { "$ROAMCTL" "$@"; }

desktop() { "$ROAM_DESKTOP_TOOL" "$@"; }

in_desktop() {  # in_desktop ID COMMAND...: run inside the desktop, as its root
    local id=$1
    shift
    desktop exec "$id" "$@"
}

as_user() {  # as_user ID USER COMMAND...: run inside the desktop as USER
    local id=$1 user=$2
    shift 2
    desktop exec "$id" --user "$user" "$@"
}

alice_in_desktop_A() {  # user alice with a disk, desktop A connected, alice's disk attached to it
    check "user add" ctl user add alice
    check "disk create" ctl disk create alice
    check "desktop create A" ctl desktop create A
    check "A connects" wait_for 30 connected A
    check "switch alice to A" ctl switch alice A
}

break_desktop() {  # break_desktop ID: its OS is damaged (its health check fails from now on)
    in_desktop "$1" touch "$DAMAGE_MARK"
}

# Slots (uid ranges, roots, veth pairs) that roam-desktop claimed for
# desktops of this test and that a stop did not release (a desktop whose pid
# file is missing): its unshare is killed, which takes the namespace's init
# with it. The root holds binds of the host's /usr: unmounted first, and rm
# never crosses a mount.
release_slots() {
    local owner slot dir pid
    for owner in "${ROAM_DESKTOP_RUN:-/run/roam-desktop}"/slots/*/owner; do
        if [[ ! -f "$owner" ]] || ! grep -qF "$T/" "$owner"; then continue; fi
        dir=$(dirname "$owner")
        slot=$(basename "$dir")
        for pid in $(pgrep -x unshare); do
            grep -qF "$dir/root" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        done
        if mountpoint -q "$dir/root"; then umount -R -l "$dir/root" || continue; fi
        ip link del "rd${slot}h" 2>/dev/null
        rm -rf --one-file-system "$dir"
    done
}

cleanup() {
    [[ -n "$BROKER_PID" ]] && kill -KILL "$BROKER_PID" 2>/dev/null
    local d
    for d in "$T"/desktops/*/; do
        [[ -d "$d" ]] && desktop stop "$(basename "$d")" >/dev/null 2>&1
    done
    release_slots
    local pid
    # roamfs processes the broker started (their mount points are under $T).
    for pid in $(pgrep -x roamfs); do
        grep -qF "$T/" "/proc/$pid/cmdline" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    awk -v t="$T/" 'index($5, t) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    [[ "${ROAM_E2E_KEEP:-0}" == 1 ]] && { log "kept $T"; return; }
    rm -rf "$T"
}
trap cleanup EXIT

# Writes keys and the broker configuration (the operator's key in upper-case
# hex: keys are accepted in either case); $1 = extra config lines,
# $2 = extra options for roam-desktop provision.
setup_broker() {
    mkdir -p "$T/keys"
    ctl keygen "$T/keys/broker.key" >"$T/keys/broker.pub" || return 1
    ctl keygen "$T/keys/operator.key" >"$T/keys/operator.pub" || return 1
    ctl keygen "$T/keys/intruder.key" >"$T/keys/intruder.pub" || return 1
    export ROAM_BROKER_KEY ROAM_KEY_FILE="$T/keys/operator.key"
    ROAM_BROKER_KEY=$(cat "$T/keys/broker.pub")
    cat >"$T/provision.sh" <<PROV
#!/bin/sh
export ROAM_DESKTOP_DIR='$ROAM_DESKTOP_DIR' ROAM_AGENT_BIN='$ROAM_AGENT_BIN' ROAMCTL='$ROAMCTL' ROAM_BIN='${ROAM_BIN:-}'
exec '$ROAM_DESKTOP_TOOL' provision $DESKTOP_USERS ${2:-} --health-check 'test ! -e $DAMAGE_MARK'
PROV
    chmod +x "$T/provision.sh"
    cat >"$T/broker.conf" <<CONF
endpoint = $ROAM_BROKER_LISTEN
key-file = $T/keys/broker.key
state-dir = $T/state
run-dir = $T/run
roamfs = $ROAMFS
provisioner = $T/provision.sh
operator-key = $(tr a-f A-F <"$T/keys/operator.pub")
dead-after-ms = 2000
detach-timeout-ms = 3000
${1:-}
CONF
}

start_broker() {
    "$ROAM_BROKER_BIN" --config "$T/broker.conf" >>"$T/broker.log" 2>&1 &
    BROKER_PID=$!
    wait_for 20 ctl status --timeout 1 || { fail "broker did not start: $(tail -n 5 "$T/broker.log")"; return 1; }
}

# The desktop alice's disk is attached to, from roamctl status --json.
desktop_of() {  # desktop_of USER
    ctl status --json | tr '{' '\n' | grep "\"user\": \"$1\"" | sed 's/.*"desktop": "\([^"]*\)".*/\1/'
}

moved_from() {  # moved_from USER OLD: USER is attached somewhere else than OLD
    local now
    now=$(desktop_of "$1")
    [[ -n "$now" && "$now" != "$2" ]]
}

mount_of() {  # the host mount point of USER's disk
    ctl status --json | tr '{' '\n' | grep "\"user\": \"$1\"" | sed 's/.*"mount": "\([^"]*\)".*/\1/'
}

connected() {  # connected DESKTOP
    ctl desktop list --json | tr '{' '\n' | grep "\"desktop\": \"$1\"" | grep -q '"connected": "yes"'
}

finish() {
    if ((E2E_FAILED)); then
        log "some checks failed; broker log:"
        tail -n 40 "$T/broker.log"
        exit 1
    fi
    log "all checks passed"
    exit 0
}
