#!/usr/bin/env bash
# Desktops with a network namespace of their own (roam-desktop --net): the
# agent reaches the broker over a veth pair, not the host's loopback, and a
# switch between two such desktops keeps every byte.
source "$(dirname "$0")/lib.sh"

own_net_ns() {  # own_net_ns DESKTOP: its network namespace is not the host's
    [[ "$(readlink "/proc/$(desktop pid "$1")/ns/net")" != "$(readlink /proc/self/ns/net)" ]]
}

main() {
    export ROAM_BROKER_LISTEN="tcp://0.0.0.0:$PORT"
    setup_broker "" "--net" || { fail "setup"; finish; }
    start_broker || finish
    ctl user add dora >/dev/null && ctl disk create dora >/dev/null
    check "desktop N1 (own network) is created" ctl desktop create N1
    check "N1's agent connects over its veth pair" wait_for 30 connected N1
    check "N1 has its own network namespace" own_net_ns N1
    check "N1 reaches the host only through 10.201.x.1" sh -c \
        "$ROAM_DESKTOP_TOOL exec N1 ip -4 -o addr show | grep -q ' 10\.201\.[0-9]*\.2/30'"
    check "switch dora to N1" ctl switch dora N1
    in_desktop N1 sh -c 'head -c 1048576 /dev/urandom > /home/dora/x && sync && md5sum /home/dora/x' >"$T/sum"
    check "data written in N1" test -s "$T/sum"
    check "switch dora to N2 (provisioned, own network)" ctl switch dora N2
    check "every byte is in N2" sh -c "$ROAM_DESKTOP_TOOL exec N2 md5sum /home/dora/x | cmp -s - $T/sum"
    local veth
    veth=$(cat "$T/desktops/N1/veth")
    desktop stop N1
    check "stopping N1 removes its veth pair" sh -c "! ip link show rd${veth}h >/dev/null 2>&1"
    finish
}

main "$@"
