// The parts of the control requests a desktop user may make (through the
// broker, `roam` in the desktop) that differ from an operator's: the tables
// of `history` and `log`, narrowed to what the user could read, and the
// permission check of a restore made as that user (fusefs/history/access.h).
// execute.h runs them.
#pragma once

#include <string>
#include <vector>

#include "fusefs/control/protocol.h"
#include "fusefs/history/restore.h"

namespace roam::control {

using Rows = std::vector<std::vector<std::string>>;

// The versions of `call.path` as rows (protocol.h, HistoryCall); with
// `call.as`, only those the user could read when they were made (search on
// the way, read on the file). ENOENT when no file was ever at the path.
Result<Rows> history_rows(Store& store, const HistoryCall& call);

// The op log records `call` selects as rows (protocol.h, LogCall): the
// newest `limit` of them, less those the user could not see.
Result<Rows> log_rows(Store& store, const LogCall& call);

// Whether `who` may make restore `req` (its moment already resolved): read
// the path as it was then (the whole tree for a directory), write where the
// restore lands now, and write every directory whose entries it changes (a
// dry run tells which). EACCES naming the first refusal.
Status check_restore(Store& store, const Identity& who, const RestoreRequest& req);

// The restore that undoes the newest restore logged with caller uid
// `call.as.uid`: its path, to just before it. ENOENT when that user made none.
Result<RestoreCall> undo_call(Store& store, const UndoRestoreCall& call);

}  // namespace roam::control
