#!/usr/bin/env bash
# The single test command: installs dependencies, builds, runs every test suite
# (unit, integration, security, slow) on a normal build and all but slow on an
# ASan+UBSan build, and
# ends with the line "N passed, N failed" (skipped tests are counted on the
# line before it).
#
# Usage: tools/scripts/test.sh [--quick]
#   --quick   skip the sanitizer build (build-asan)
# Env:
#   ROAMDISK_TEST_RUN_TIMEOUT   seconds allowed for one `meson test` run (default 1500)
#   MESON_TEST_ARGS             extra arguments for `meson test` (e.g. "--suite unit")

# No -e: failures are counted and reported, not fatal.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QUICK=0
PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=()
# The end of each failed test's output, printed again just above the summary:
# CI shows only the last part of a run's output.
FAILURE_TAILS=$(mktemp)
trap 'rm -f "$FAILURE_TAILS"' EXIT
RUN_TIMEOUT=${ROAMDISK_TEST_RUN_TIMEOUT:-1500}

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
}

err() {
    echo "test: error: $*" >&2
}

# A step that is not a test (dependency install, build) failed: it counts as
# one failure so the closing line never reports success for a broken run.
step_failed() {
    err "$1"
    FAILED=$((FAILED + 1))
    FAILED_NAMES+=("[$1]")
}

# Print "PASSED FAILED SKIPPED" for a meson testlog.json, then on following
# lines the names of the tests that did not pass.
parse_testlog() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
path, label = sys.argv[1], sys.argv[2]
passed = failed = skipped = 0
bad = []
try:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
                result = str(rec.get("result", "")).upper()
                name = rec.get("name", "?")
            except (ValueError, AttributeError):
                failed += 1
                bad.append(f"{label}: unparsable testlog line")
                continue
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:  # FAIL, TIMEOUT, UNEXPECTEDPASS, ERROR, anything new
                failed += 1
                bad.append(f"{label}: {name} ({result or 'no result'})")
except FileNotFoundError:
    pass
print(passed, failed, skipped)
for b in bad:
    print(b)
EOF
}

# Appends to FAILURE_TAILS the last lines of what each test that did not
# pass printed (from a meson testlog.json).
save_failure_tails() {
    python3 - "$1" "$2" >>"$FAILURE_TAILS" <<'EOF'
import json, sys
path, label = sys.argv[1], sys.argv[2]
try:
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if str(rec.get("result", "")).upper() in ("OK", "EXPECTEDFAIL", "SKIP"):
                continue
            out = (rec.get("stdout") or "") + (rec.get("stderr") or "")
            print(f"--- {label}: {rec.get('name', '?')}: the last lines it printed")
            print("\n".join(out.rstrip().splitlines()[-40:]))
except FileNotFoundError:
    pass
EOF
}

# run_tests LABEL BUILD_DIR TIMEOUT_MULTIPLIER "MESON TEST ARGS" [ENV=VALUE...]
run_tests() {
    local label=$1 build_dir=$2 mult=$3 test_args=$4
    shift 4
    local testlog="$build_dir/meson-logs/testlog.json"
    rm -f "$testlog"

    echo "=== test: $label (meson test -C $build_dir, timeout multiplier $mult)"
    local -a extra=()
    # shellcheck disable=SC2206  # word splitting of the arguments is intended
    extra=($test_args ${MESON_TEST_ARGS:-})
    local rc=0
    env "$@" timeout --kill-after=30 "$RUN_TIMEOUT" \
        meson test -C "$build_dir" --print-errorlogs --timeout-multiplier "$mult" \
        "${extra[@]}" </dev/null || rc=$?

    local summary p f s
    summary=$(parse_testlog "$testlog" "$label") || {
        step_failed "$label: could not parse $testlog"
        return
    }
    read -r p f s <<<"$(head -n 1 <<<"$summary")"
    ((f > 0)) && save_failure_tails "$testlog" "$label"
    while IFS= read -r name; do
        [[ -n "$name" ]] && FAILED_NAMES+=("$name")
    done < <(tail -n +2 <<<"$summary")
    PASSED=$((PASSED + p))
    FAILED=$((FAILED + f))
    SKIPPED=$((SKIPPED + s))

    if ((rc == 124 || rc == 137)); then
        step_failed "$label: meson test exceeded ${RUN_TIMEOUT}s and was stopped"
    elif ((rc != 0 && f == 0)); then
        step_failed "$label: meson test exited with $rc but no test failed (build or setup error?)"
    fi
    echo "=== test: $label: $p passed, $f failed, $s skipped"
}

# build_and_test LABEL BUILD_DIR TIMEOUT_MULTIPLIER "MESON ARGS" "MESON TEST ARGS" [ENV=VALUE...]
build_and_test() {
    local label=$1 build_dir=$2 mult=$3 meson_args=$4 test_args=$5
    shift 5
    echo "=== build: $label ($build_dir)"
    local -a args
    read -r -a args <<<"$meson_args"
    if ! bash "$ROOT/tools/scripts/build.sh" "$build_dir" "${args[@]}" </dev/null; then
        step_failed "$label: build failed"
        return
    fi
    run_tests "$label" "$build_dir" "$mult" "$test_args" "$@"
}

main() {
    while (($# > 0)); do
        case $1 in
        --quick) QUICK=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            err "unknown argument: $1"
            usage >&2
            exit 2
            ;;
        esac
        shift
    done
    cd "$ROOT" || exit 1
    local start=$SECONDS

    if ! bash "$ROOT/tools/scripts/install-deps.sh" </dev/null; then
        step_failed "installing dependencies failed"
    else
        # -g1 (line tables: every stack trace still has file:line) instead
        # of -g: full debug info made each file compile a third slower and
        # the links much slower, for nothing a test reads.
        build_and_test "build" build 1 "--buildtype=debugoptimized -Dcpp_args=-g1" ""
        if ((QUICK == 0)); then
            # -O1, as the sanitizers' own documentation suggests: stack traces
            # stay exact, and this build, most of CI's time, compiles much
            # faster than at -O2; -g1 as above (a sanitized file compiled in
            # 12 s instead of 18 s with -g). The slow suite (roamfs killed at random,
            # power cuts, the soak) runs on the normal build only: a killed
            # process has nothing for the sanitizers to report, and it kept
            # the whole run over 30 minutes. The two longest tests (random
            # operations against a plain directory, restores to every
            # checkpoint) run a third of their operations here: the normal
            # build runs them in full, and the sanitizers watch the same code
            # paths (88 s and 85 s at full length under ASan).
            build_and_test "build-asan" build-asan 3 \
                "--buildtype=debugoptimized --optimization=1 -Dcpp_args=-g1 -Db_sanitize=address,undefined -Db_lundef=false" \
                "--no-suite slow" \
                ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
                UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
                ROAM_DIFF_OPS=1000 ROAM_RESTORE_OPS=400
        fi
    fi

    local rc=0
    if [[ -s "$FAILURE_TAILS" ]]; then
        echo "=== what the failed tests printed last"
        cat "$FAILURE_TAILS"
    fi
    if ((${#FAILED_NAMES[@]} > 0)); then
        echo "=== not passed:"
        printf '  %s\n' "${FAILED_NAMES[@]}"
        rc=1
    fi
    if ((PASSED + FAILED + SKIPPED == 0)); then
        err "no tests ran"
        rc=1
    fi
    ((FAILED == 0)) || rc=1
    echo "=== total time $((SECONDS - start))s"

    # The last line is the plain summary CI reads; skips go on the line above.
    ((SKIPPED > 0)) && echo "=== skipped: $SKIPPED (a test that cannot run here says why in its log)"
    echo "$PASSED passed, $FAILED failed"
    exit "$rc"
}

main "$@"
