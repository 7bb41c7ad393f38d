#!/usr/bin/env bash
# The broker against hostile clients (tests/e2e/wire_probe.cc): no answer
# without CURVE, an EPROTO reply to every malformed, truncated, random or
# oversized message, and still serving afterwards. Also: a broker killed
# between two requests comes back with its registry intact.
source "$(dirname "$0")/lib.sh"

main() {
    setup_broker || { fail "setup"; finish; }
    start_broker || finish
    check "user add" ctl user add carol
    check "hostile clients" "$ROAM_WIRE_PROBE" "$ROAM_BROKER" "$ROAM_BROKER_KEY" "$ROAM_KEY_FILE" ${ROAM_SEED:+"$ROAM_SEED"}
    check "the broker is still running" kill -0 "$BROKER_PID"
    kill -KILL "$BROKER_PID"
    wait "$BROKER_PID" 2>/dev/null
    start_broker || finish
    check "the registry survives a SIGKILL of the broker" sh -c "$ROAMCTL user list | grep -q carol"
    check "a second user add of the same name is refused" sh -c "! $ROAMCTL user add carol 2>$T/dup.err"
    check "with one sentence" grep -q "user carol already exists" "$T/dup.err"
    finish
}

main "$@"
