#!/usr/bin/env bash
# A desktop's network is its own (roam-desktop gives every desktop a network
# namespace): the agent reaches the broker over a veth pair, not the host's
# loopback, which the desktop cannot reach; a switch between two such desktops
# keeps every byte; stopping a desktop removes its veth pair.
source "$(dirname "$0")/lib.sh"

own_net_ns() {  # own_net_ns DESKTOP: its network namespace is not the host's
    [[ "$(readlink "/proc/$(desktop pid "$1")/ns/net")" != "$(readlink /proc/self/ns/net)" ]]
}

# Whether a process in DESKTOP (as dora) can open a TCP connection to ADDRESS:PORT.
reaches() {  # reaches DESKTOP ADDRESS PORT
    as_user "$1" dora python3 -c 'import socket, sys
socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)' "$2" "$3" 2>/dev/null
}

unreachable() { ! reaches "$@"; }

# DESKTOP's only global address is its end of veth pair N, in 10.201.0.0/16.
only_veth_address() {  # only_veth_address DESKTOP N
    local addrs
    addrs=$(in_desktop "$1" ip -4 -o addr show scope global | awk '{ print $2, $4 }')
    [[ "$addrs" == "rd$2d 10.201."*"/30" ]] || { log "addresses in $1: $addrs"; return 1; }
}

main() {
    setup_broker || { fail "setup"; finish; }
    start_broker || finish
    ctl user add dora >/dev/null && ctl disk create dora >/dev/null
    check "desktop N1 is created" ctl desktop create N1
    check "N1's agent connects over its veth pair" wait_for 30 connected N1
    check "N1 has its own network namespace" own_net_ns N1
    local veth host_end
    veth=$(cat "$T/desktops/N1/slot")
    host_end=$(ip -4 -o addr show dev "rd${veth}h" | awk '{ sub(/\/.*/, "", $4); print $4 }')
    check "N1's only address is its end of the veth pair" only_veth_address N1 "$veth"
    check "N1 reaches the broker at the host's end ($host_end)" reaches N1 "$host_end" "$PORT"
    check "N1's 127.0.0.1 is its own, not the host's" unreachable N1 127.0.0.1 "$PORT"
    check "switch dora to N1" ctl switch dora N1
    as_user N1 dora sh -c 'head -c 1048576 /dev/urandom > /home/dora/x && sync && md5sum /home/dora/x' >"$T/sum"
    check "data written in N1" test -s "$T/sum"
    check "switch dora to N2 (provisioned)" ctl switch dora N2
    check "every byte is in N2" sh -c "$ROAM_DESKTOP_TOOL exec N2 --user dora md5sum /home/dora/x | cmp -s - $T/sum"
    desktop stop N1
    check "stopping N1 removes its veth pair" sh -c "! ip link show rd${veth}h >/dev/null 2>&1"
    finish
}

main "$@"
