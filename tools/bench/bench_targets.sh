# Part of tools/bench/bench (sourced): the targets. Each workload gets
# a fresh instance of every selected target (start_target) and removes it
# afterwards (stop_target); cleanup, the EXIT trap, stops whatever is left.
# The FUSE daemons start as in tools/scripts/pjdfstest.sh (fuse_daemons.sh).
# shellcheck shell=bash

# build_passthrough_ll: compile libfuse's example into $CACHE when it is
# missing or older than its source.
build_passthrough_ll() {
    mkdir -p "$CACHE"
    if [[ ! -x "$CACHE/passthrough_ll" || "$PT_SOURCE" -nt "$CACHE/passthrough_ll" ]]; then
        compile_passthrough_ll "$CACHE/passthrough_ll" || die "compiling $PT_SOURCE failed"
    fi
}

# The remote target's network: a namespace reached over a veth pair, as a
# desktop on another host is (docs/remote.md). Made at its first use and
# removed by cleanup.
REMOTE_NETNS="roambench$$"
REMOTE_VETH="rbh$$"
REMOTE_HOST_IP=10.250.0.1
REMOTE_DESKTOP_IP=10.250.0.2
REMOTE_PORT=$((20000 + $$ % 20000))
REMOTE_SERVER_MNT=
REMOTE_SERVER_PID=

start_remote_net() {
    ip netns list | grep -qw "$REMOTE_NETNS" && return 0
    ip netns add "$REMOTE_NETNS" &&
        ip link add "$REMOTE_VETH" type veth peer name rbd0 netns "$REMOTE_NETNS" &&
        ip addr add "$REMOTE_HOST_IP/30" dev "$REMOTE_VETH" && ip link set "$REMOTE_VETH" up &&
        ip -n "$REMOTE_NETNS" addr add "$REMOTE_DESKTOP_IP/30" dev rbd0 &&
        ip -n "$REMOTE_NETNS" link set rbd0 up && ip -n "$REMOTE_NETNS" link set lo up
}

stop_remote_net() {
    ip link del "$REMOTE_VETH" 2>/dev/null || true
    ip netns del "$REMOTE_NETNS" 2>/dev/null || true
}

# start_remote GROUP: roamfs on a fresh store serves it (--remote-listen on
# the host's end of the veth pair) to roam-agent's remote driver, which runs
# in the namespace and mounts it at $WORK/remote-mnt: the workloads go
# through the driver's relay, ZeroMQ+CURVE and roamfs's remote session.
start_remote() {
    local g=$1 store="$WORK/remote-store-$1" served="$WORK/remote-served" mnt="$WORK/remote-mnt"
    local log="$LOG_PREFIX-remote.log" ctl="$BUILD_DIR/tools/roamctl/roamctl"
    mkdir -p "$served" "$mnt"
    start_remote_net >>"$log" 2>&1 || { note "could not make the remote target's network (see $log)"; return 1; }
    { "$ctl" mkfs "$store" && "$ctl" keygen "$WORK/remote-roamfs.key" && "$ctl" keygen "$WORK/remote-desktop.key"; } \
        </dev/null >>"$log" 2>&1 || { note "roamctl mkfs/keygen failed (see $log)"; return 1; }
    local roamfs_pub desktop_pub
    roamfs_pub=$(sed -n 's/^public = //p' "$WORK/remote-roamfs.key")
    desktop_pub=$(sed -n 's/^public = //p' "$WORK/remote-desktop.key")
    start_daemon "$log" "$BUILD_DIR/fusefs/roamfs" "$store" "$served" -f \
        --remote-listen "tcp://$REMOTE_HOST_IP:$REMOTE_PORT" --remote-key-file "$WORK/remote-roamfs.key" \
        --remote-allow "$desktop_pub"
    REMOTE_SERVER_PID=$DAEMON_PID REMOTE_SERVER_MNT=$served
    wait_mount "$served" "$REMOTE_SERVER_PID" 30 || { note "roamfs did not mount (see $log)"; return 1; }
    # nsenter --net, not ip netns exec: the mount must be in this mount namespace.
    start_daemon "$log" nsenter --net="/run/netns/$REMOTE_NETNS" "$BUILD_DIR/agent/roam-agent" mount-remote \
        "tcp://$REMOTE_HOST_IP:$REMOTE_PORT#$roamfs_pub" "$mnt" --key-file "$WORK/remote-desktop.key" --desktop bench
    MNT_OF[remote]=$mnt PID_OF[remote]=$DAEMON_PID
    wait_mount "$mnt" "$DAEMON_PID" 30 || { note "the remote driver did not mount (see $log)"; return 1; }
    ROOT_OF[remote]=$mnt
}

# stop_remote: the driver syncs and unmounts on SIGTERM; then roamfs goes.
stop_remote() {
    local pid=${PID_OF[remote]:-}
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        wait_exit_or_kill "$pid" 30 || note "the remote driver (pid $pid) still ran 30 s after SIGTERM; killed it"
        wait "$pid" 2>/dev/null || true
    fi
    unmount_fuse "${MNT_OF[remote]:-/nonexistent}" || note "could not unmount ${MNT_OF[remote]}"
    if [[ -n "$REMOTE_SERVER_MNT" ]]; then
        unmount_fuse "$REMOTE_SERVER_MNT" || note "could not unmount $REMOTE_SERVER_MNT"
        wait_exit_or_kill "$REMOTE_SERVER_PID" 30 || note "roamfs (pid $REMOTE_SERVER_PID) still ran after unmount; killed it"
        wait "$REMOTE_SERVER_PID" 2>/dev/null || true
    fi
    local mnt=${MNT_OF[remote]:-} served=$REMOTE_SERVER_MNT
    unset "MNT_OF[remote]" "PID_OF[remote]"
    REMOTE_SERVER_MNT= REMOTE_SERVER_PID=
    if { [[ -n "$mnt" ]] && mountpoint -q "$mnt"; } || { [[ -n "$served" ]] && mountpoint -q "$served"; }; then
        return 1 # leave the data alone while something is still mounted
    fi
    rm -rf "$WORK"/remote-store-* "$WORK"/remote-*.key
}

# start_target TARGET GROUP: prepare a fresh instance; sets ROOT_OF[TARGET].
start_target() {
    local t=$1 g=$2 pid
    case $t in
    plain)
        ROOT_OF[$t]="$WORK/plain-$g"
        mkdir -p "${ROOT_OF[$t]}"
        ;;
    passthrough_ll)
        local backing="$WORK/pt-backing-$g" mnt="$WORK/pt-mnt"
        mkdir -p "$backing" "$mnt"
        start_daemon "$LOG_PREFIX-passthrough_ll.log" "$CACHE/passthrough_ll" -f -o "source=$backing" "$mnt"
        pid=$DAEMON_PID
        MNT_OF[$t]=$mnt PID_OF[$t]=$pid
        wait_mount "$mnt" "$pid" 30 || { note "passthrough_ll did not mount (see $LOG_PREFIX-passthrough_ll.log)"; return 1; }
        ROOT_OF[$t]=$mnt
        ;;
    roamfs)
        local store="$WORK/roam-store-$g" mnt="$WORK/roam-mnt"
        mkdir -p "$mnt"
        "$BUILD_DIR/tools/roamctl/roamctl" mkfs "$store" </dev/null >>"$LOG_PREFIX-roamfs.log" 2>&1 ||
            { note "roamctl mkfs failed (see $LOG_PREFIX-roamfs.log)"; return 1; }
        local -a extra=()
        read -r -a extra <<<"${BENCH_ROAMFS_ARGS:-}"
        start_daemon "$LOG_PREFIX-roamfs.log" "$BUILD_DIR/fusefs/roamfs" "$store" "$mnt" -f "${extra[@]}"
        pid=$DAEMON_PID
        MNT_OF[$t]=$mnt PID_OF[$t]=$pid
        wait_mount "$mnt" "$pid" 30 || { note "roamfs did not mount (see $LOG_PREFIX-roamfs.log)"; return 1; }
        ROOT_OF[$t]=$mnt
        ;;
    remote) start_remote "$g" ;;
    esac
}

# stop_target TARGET: unmount and wait for the daemon; remove its data.
stop_target() {
    [[ "$1" == remote ]] && { stop_remote; return; }
    local t=$1 mnt=${MNT_OF[$1]:-} pid=${PID_OF[$1]:-}
    if [[ -n "$mnt" ]]; then
        unmount_fuse "$mnt" || note "could not unmount $mnt"
    fi
    if [[ -n "$pid" ]]; then
        wait_exit_or_kill "$pid" 30 || note "$t (pid $pid) still running 30 s after unmount; killing it"
        local st=0
        wait "$pid" 2>/dev/null || st=$?
        if ((st > 128)); then
            note "$t exited on signal $((st - 128)) (see $LOG_PREFIX-$t.log)"
        fi
    fi
    unset "MNT_OF[$t]" "PID_OF[$t]"
    if [[ -n "$mnt" ]] && mountpoint -q "$mnt"; then
        return 1 # leave the data alone while something is still mounted
    fi
    case $t in
    plain) rm -rf "${ROOT_OF[$t]}" ;;
    passthrough_ll) rm -rf "$WORK"/pt-backing-* ;;
    roamfs) rm -rf "$WORK"/roam-store-* ;;
    esac
}

cleanup() {
    local rc=$? t still=0
    cd /
    for t in "${!MNT_OF[@]}"; do
        stop_target "$t" || still=1
    done
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if ((still)) || grep -qF " $WORK/" /proc/self/mounts; then
            note "something is still mounted under $WORK: not removing it"
        else
            rm -rf "$WORK"
        fi
    fi
    stop_remote_net
    exit "$rc"
}
