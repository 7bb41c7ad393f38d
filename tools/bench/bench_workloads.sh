# Part of tools/bench/bench (sourced): the workloads. run_group runs one
# workload RUNS times on every target; each run_GROUP is one run of it made
# of timed steps (their wall time goes to $RESULTS) and untimed prep steps,
# every one a bash -c string bounded by OP_TIMEOUT with its output in $OPLOG.
# shellcheck shell=bash

drop_caches() {
    sync
    if ((DROP_CACHES)); then
        echo 3 >/proc/sys/vm/drop_caches
    fi
}

# run_bounded COMMAND: run a bash -c string with a time limit, output to the
# op log. It runs as a background job so that a signal to this script is
# handled at once (see on_signal), not when the step ends.
run_bounded() {
    timeout -k 10 "$OP_TIMEOUT" bash -c "$1" >>"$OPLOG" 2>&1 </dev/null &
    CHILD=$!
    local rc=0
    wait "$CHILD" || rc=$?
    CHILD=
    return "$rc"
}

on_signal() {
    # timeout passes the TERM on to the step it runs
    [[ -z "$CHILD" ]] || kill -TERM "$CHILD" 2>/dev/null || true
    exit 130
}

# record ROW TARGET RUN VALUE
record() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RESULTS"
    RECORDED["$1|$2|$3"]=1
}

# timed ROW TARGET RUN COMMAND: run COMMAND (a bash -c string) and record its
# wall time, or FAIL.
timed() {
    local row=$1 t=$2 run=$3 cmd=$4 t0 t1
    echo "--- $t run $run $row: $cmd" >>"$OPLOG"
    t0=${EPOCHREALTIME/./}
    if run_bounded "$cmd"; then
        t1=${EPOCHREALTIME/./}
        record "$row" "$t" "$run" "$(printf '%d.%06d' $(((t1 - t0) / 1000000)) $(((t1 - t0) % 1000000)))"
        return 0
    fi
    echo "--- FAILED" >>"$OPLOG"
    record "$row" "$t" "$run" FAIL
    return 1
}

# prep COMMAND: an untimed step.
prep() {
    echo "--- prep: $1" >>"$OPLOG"
    run_bounded "$1" || { echo "--- FAILED" >>"$OPLOG"; return 1; }
}

q() { printf '%q' "$1"; }

# run_GROUP TARGET RUN DIR: one run of a workload in the fresh directory DIR.
run_tree() {
    local t=$1 r=$2 d=$3
    prep "mkdir -p $(q "$d") && cat $(q "$TREE_TAR") >/dev/null && sync" || return 1
    timed untar "$t" "$r" "tar -xf $(q "$TREE_TAR") -C $(q "$d")" || return 1
    drop_caches
    timed stat-all "$t" "$r" "cd $(q "$d/tree") && find . -printf '%p %s %m %U %G %T@\n' >/dev/null" || return 1
    drop_caches
    timed read-all "$t" "$r" "tar -C $(q "$d/tree") -cf - . | cat >/dev/null" || return 1
    prep "sync" || return 1
    # rm-rf does not depend on the copy: measure it even when cp-a failed
    timed cp-a "$t" "$r" "cp -a $(q "$d/tree") $(q "$d/copy")" || true
    prep "sync" || return 1
    timed rm-rf "$t" "$r" "rm -rf $(q "$d/tree")" || return 1
}

run_seqio() {
    local t=$1 r=$2 d=$3
    prep "mkdir -p $(q "$d") && cat $(q "$RAND_FILE") >/dev/null && sync" || return 1
    timed seq-write-1g "$t" "$r" "dd if=$(q "$RAND_FILE") of=$(q "$d/big") bs=1M conv=fsync status=none" || return 1
    drop_caches
    timed seq-read-1g "$t" "$r" "dd if=$(q "$d/big") of=/dev/null bs=1M status=none" || return 1
    # coreutils cp asks copy_file_range first: roamfs shares the blobs, the
    # others copy the bytes (passthrough_ll and the plain directory in ext4).
    timed cp-1g "$t" "$r" "cp $(q "$d/big") $(q "$d/big.copy")" || return 1
}

run_randio() {
    local t=$1 r=$2 d=$3
    local f="$d/rand.bin"
    prep "mkdir -p $(q "$d") && dd if=$(q "$RAND_FILE") of=$(q "$f") bs=1M count=$RANDIO_FILE_MIB conv=fsync status=none" || return 1
    prep "sync" || return 1
    timed rand-write-4k "$t" "$r" "$(q "$RANDIO") write $(q "$f") $RANDIO_OPS $r" || return 1
    drop_caches
    timed rand-read-4k "$t" "$r" "$(q "$RANDIO") read $(q "$f") $RANDIO_OPS $((r + 1000))" || return 1
}

run_sqlite() {
    local t=$1 r=$2 d=$3
    prep "mkdir -p $(q "$d") && sync" || return 1
    timed "sqlite-${SQLITE_INSERTS}tx" "$t" "$r" "sqlite3 -batch -init /dev/null $(q "$d/bench.db") <$(q "$SQL_FILE")" || return 1
}

# The same files per thread, with one thread and with eight: the eight do 8x
# the work, so 8x the time means fsyncs do not overlap at all.
run_fsync() {
    local t=$1 r=$2 d=$3 n
    for n in 1 8; do
        prep "mkdir -p $(q "$d/$n") && sync" || return 1
        timed "fsync-${n}x${FSYNC_FILES}" "$t" "$r" "$(q "$FSYNC_BENCH") $(q "$d/$n") $n $FSYNC_FILES" || return 1
    done
}

run_git() {
    local t=$1 r=$2 d=$3
    prep "mkdir -p $(q "$d") && sync" || return 1
    timed git-clone "$t" "$r" "git clone -q --no-local $(q "$GIT_SRC") $(q "$d/clone")" || return 1
    timed git-status "$t" "$r" "git -C $(q "$d/clone") status --porcelain >/dev/null" || return 1
}

run_cbuild() {
    local t=$1 r=$2 d=$3
    prep "mkdir -p $(q "$d") && tar -xf $(q "$CPROJ_TAR") -C $(q "$d") && sync" || return 1
    timed c-build "$t" "$r" "cd $(q "$d/cproj") && CC=cc CFLAGS='-O2 -Wall' ./configure >/dev/null && make -j2 -s >/dev/null" || return 1
}

# fail_missing GROUP TARGET RUN: record FAIL for the rows a failed run skipped.
fail_missing() {
    local g=$1 t=$2 r=$3 row
    for row in $(group_rows "$g"); do
        [[ -n "${RECORDED["$row|$t|$r"]:-}" ]] || record "$row" "$t" "$r" FAIL
    done
}

run_group() {
    local g=$1 t r i n=${#TARGETS_SEL[@]}
    declare -A up=()
    note "workload $g: $(group_rows "$g")"
    for t in "${TARGETS_SEL[@]}"; do
        if start_target "$t" "$g"; then
            up[$t]=1
        else
            note "$t: could not be set up for $g: FAIL"
        fi
    done
    for ((r = 1; r <= RUNS; r++)); do
        # rotate the target order from run to run to spread any drift
        for ((i = 0; i < n; i++)); do
            t=${TARGETS_SEL[$(((i + r - 1) % n))]}
            if [[ -n "${up[$t]:-}" ]]; then
                local d="${ROOT_OF[$t]}/run$r"
                if [[ -n "${MNT_OF[$t]:-}" ]] && ! mountpoint -q "${MNT_OF[$t]}"; then
                    note "$t: no longer mounted"
                elif "run_$g" "$t" "$r" "$d"; then
                    :
                else
                    note "$t: $g run $r failed (details: $OPLOG)"
                fi
                prep "rm -rf $(q "$d")" || true
                prep "sync" || true
            fi
            fail_missing "$g" "$t" "$r"
        done
    done
    if [[ -n "${PID_OF[roamfs]:-}" ]] && [[ -r "/proc/${PID_OF[roamfs]}/status" ]]; then
        local rss hwm
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/${PID_OF[roamfs]}/status" 2>/dev/null) || true
        hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/${PID_OF[roamfs]}/status" 2>/dev/null) || true
        printf 'rss\t%s\t%s\t%s\n' "$g" "${rss:-0}" "${hwm:-0}" >>"$RESULTS"
    fi
    for t in "${TARGETS_SEL[@]}"; do
        stop_target "$t" || die "could not unmount $t; stopping"
    done
}
