// Step 4 of GC (gc.h): segment compaction. Internal to fusefs/gc.
#pragma once

#include "fusefs/gc/gc.h"

namespace roam::gc_detail {

// Frees the blobs in `ids` whose rows may go (all but the highest blob id):
// deletes their rows and adds their bytes to the report.
Status free_blobs(WriteTxn& txn, const std::vector<uint64_t>& ids, GcReport& report);

Status compact_segments(Store& store, const GcOptions& options, GcReport& report);

}  // namespace roam::gc_detail
