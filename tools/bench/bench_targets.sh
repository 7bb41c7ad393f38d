# Part of tools/bench/bench (sourced): the three targets. Each workload gets
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
    esac
}

# stop_target TARGET: unmount and wait for the daemon; remove its data.
stop_target() {
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
    exit "$rc"
}
