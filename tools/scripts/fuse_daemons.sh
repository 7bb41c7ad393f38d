# Starting and stopping the FUSE daemons that tools/bench/bench and
# tools/scripts/pjdfstest.sh run tests over (roamfs, and libfuse's passthrough_ll
# for comparison).
# Sourced by them; not a command.
# shellcheck shell=bash

# shellcheck disable=SC2034  # used by the scripts that source this file
PT_SOURCE=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c

# compile_passthrough_ll OUT: compile libfuse's passthrough_ll example to OUT.
compile_passthrough_ll() {
    # shellcheck disable=SC2046  # pkg-config output must be split
    gcc -O2 -Wall -I"$(dirname "$PT_SOURCE")" -o "$1" "$PT_SOURCE" $(pkg-config fuse3 --cflags --libs)
}

# passthrough_ll keeps an O_PATH descriptor per known inode: give the FUSE
# daemons the highest open-file limit allowed.
raise_nofile() {
    ulimit -n "$(cat /proc/sys/fs/nr_open)" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
}

# start_daemon LOG COMMAND...: run COMMAND (a FUSE daemon in the foreground)
# in the background with the highest open-file limit, stdin from /dev/null,
# its output appended to LOG; sets DAEMON_PID to its pid.
start_daemon() {
    local log=$1
    shift
    (raise_nofile && exec "$@") </dev/null >>"$log" 2>&1 &
    DAEMON_PID=$!
}

# unmount_fuse DIR: unmount DIR when it is a mount point (fusermount3 -u, else
# umount, else a lazy umount -l); 1 when every way failed.
unmount_fuse() {
    mountpoint -q "$1" 2>/dev/null || return 0
    fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
}

# wait_exit_or_kill PID SECONDS: 0 once PID (a daemon after its unmount) has
# exited; when it still runs after SECONDS, kills it (SIGKILL) and returns 1.
# The caller still waits for its child to collect the exit status.
wait_exit_or_kill() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -0 "$1" 2>/dev/null || return 0
    kill -9 "$1" 2>/dev/null || true
    return 1
}

# wait_mount DIR PID SECONDS: 0 once DIR is a mount point; 1 when PID (the
# FUSE daemon) exits first or SECONDS pass.
wait_mount() {
    local dir=$1 pid=$2 i
    for ((i = 0; i < $3 * 10; i++)); do
        mountpoint -q "$dir" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
