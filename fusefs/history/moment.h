// Which past state a TIME or "before op N" names, checked against what the
// disk's history still holds.
//
// The state at time T is the state after the last record logged at or before
// T (timestamps strictly increase with seq, so this is unambiguous). "Before op
// N" is the state after record N-1.
//
// Errors say what to do instead: a moment before the disk existed names its
// creation time; one older than retention names the oldest restorable moment;
// an unknown op names the range the log holds; a future time says so.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "fusefs/store/store.h"

namespace roam {

struct Moment {
  uint64_t seq = 0;   // the state after this record (0: before the first)
  std::string label;  // how the user named it, for the log and messages
};

Result<Moment> moment_at(const StoreTxn& txn, int64_t ts_ns, int64_t now_ns);
Result<Moment> moment_before_op(const StoreTxn& txn, uint64_t op);
// The one of the two that is given (`at_ns` first).
Result<Moment> moment_of(const StoreTxn& txn, std::optional<int64_t> at_ns, std::optional<uint64_t> before_op,
                         int64_t now_ns);

// OK while the log still holds every record after `seq`, so a past view of
// it is exact; ERANGE (naming the oldest restorable moment) once retention
// dropped one. A view read in an earlier transaction was exact if this holds
// now: records are dropped oldest first and never come back.
Status check_still_held(const StoreTxn& txn, uint64_t seq);

// When the store was created (meta table), in ns.
Result<int64_t> store_created_ns(const StoreTxn& txn);

}  // namespace roam
