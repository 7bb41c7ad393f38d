// Undo one program's changes (`roam undo --by PROCESS|--pid PID`,
// `roamctl undo`): every change the op log attributes to the process since a
// moment goes back, every change others made meanwhile stays. undo_plan.h
// says which paths and what happens to each; this applies the plan as ONE
// logged restore (kind restore, with the before-image of everything it
// changed), so it is undone like any restore: restoring the record's path
// (the deepest directory holding every path it changed) to just before it,
// which `roam undo-restore` does.
//
// Each step is a restore (restore.h) of one path: kRevert restores the path
// to just before the program's first change there; kBeside restores that
// same state as a copy at NAME.before-PROCESS-TIME beside the path, which
// stays as others left it. A step whose restore cannot happen because a
// directory on the way is gone now is reported as kept, with the reason.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/history/restore.h"
#include "fusefs/history/undo_plan.h"

namespace roam {

struct UndoRequest {
  UndoTarget target;
  std::optional<int64_t> since_ns;  // only changes at or after this time; nullopt: all the log holds
  bool dry_run = false;
};

struct UndoResult {
  std::vector<UndoStep> steps;  // as planned
  // The changes, step by step in path order: each restore's own (+, -, ~)
  // and one kKept line (=) per path kept as it is, saying why. The record
  // and what kernel caches must forget are those of the one restore.
  RestoreResult restore;
  std::string source;  // "undo of evil since 2026-…Z", as logged in the record's name
};

// Runs the undo as `caller`, in one write transaction: all or nothing.
// `allowed`, when given, is asked about every restore the steps make
// (kRevert and kBeside; a copy's name made unique against the live tree)
// before anything is written (it may open transactions of its own), and an
// error from it refuses the whole undo. ENOENT when the target made no
// change since the moment. EAGAIN when the disk changed between the check
// and the undo (run it again).
using RestoreCheck = std::function<Status(const RestoreRequest&)>;
Result<UndoResult> undo_process(Store& store, const Caller& caller, const UndoRequest& req,
                                const RestoreCheck& allowed = {});

}  // namespace roam
