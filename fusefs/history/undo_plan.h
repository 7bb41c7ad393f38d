// The read-only half of `roam undo --by`: from the op log records since a
// moment, which paths one program changed and what to do with each. A pure
// function over records (no store), so every conflict case is unit-tested
// without a filesystem (tests/unit/test_undo.cc); undo.h applies the plan.
//
// Paths, not inodes: the op log names each change by the path it acted on
// (`path`, and `path2` for a rename or link), and a path is what a user
// expects back. For each path the program touched:
//
// - nobody else touched it (or anything below it, or moved or restored a
//   directory above it) after the program's first change: it goes back to
//   the state just before that change (kRevert). A file the program created
//   is removed, one it deleted or renamed away comes back, one it rewrote
//   gets its old content. Below a reverted directory everything is covered
//   by that one revert, reverted to the program's first change anywhere
//   inside it.
// - someone else touched it after the program's first change: it is kept as
//   they left it, and the program's version before its first change is
//   restored beside it (kBeside, at `beside`). A directory the program
//   touched that others changed inside is kept (kKept) and the paths below
//   it are planned one by one.
//
// Known limit (stated in the plan as kKept): when the program changed a
// path below a directory D and then changed D itself (renamed or removed
// it), and someone else changed something in D in between, D goes back to
// just before the program's change to D; the earlier change below it is
// listed with the op to restore it to.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fusefs/oplog/record.h"

namespace roam {

// Which process's changes to undo: every record whose caller has this comm
// (a process name, as in /proc/PID/comm) or this pid. Exactly one is set.
struct UndoTarget {
  std::optional<std::string> comm;
  std::optional<uint32_t> pid;
  bool matches(const Caller& c) const { return comm ? c.comm == *comm : pid && c.pid == *pid; }
  // "evil" or "pid 1234", for messages; "evil" or "pid-1234" in a file name.
  std::string label() const;
  std::string file_label() const;
};

// What the planner reads of one op log record.
struct LoggedChange {
  uint64_t seq = 0;
  int64_t ts_ns = 0;
  OpKind kind = OpKind::kCreate;
  bool by_target = false;  // made by the process being undone
  std::string path, path2;
};
LoggedChange logged_change(const OpRecord& r, const UndoTarget& target);

struct UndoStep {
  enum class Kind : char {
    kRevert = 'r',  // `path` goes back to the state after `at_seq`
    kBeside = 'b',  // `path` is kept; its state after `at_seq` is restored at `beside`
    kKept = 'k',    // `path` is kept as it is; `reason` says why
  };
  Kind kind = Kind::kRevert;
  std::string path;
  uint64_t at_seq = 0;    // the record just before the program's first change here
  uint64_t first_seq = 0; // the program's first change here
  std::string beside;     // kBeside: NAME.before-PROCESS-YYYYMMDDTHHMMSSZ beside `path`
  std::string reason;     // kKept
  bool operator==(const UndoStep&) const = default;
};

// The steps that undo `target`'s changes among `changes` (every record since
// the moment the undo starts from, by any process, in seq order), in path
// order, no path inside another's kRevert. Empty when the target made no
// change there. Paths are absolute disk paths as the records hold them.
std::vector<UndoStep> plan_undo(const std::vector<LoggedChange>& changes, const UndoTarget& target);

// The name a kBeside step restores to: "/d/NAME.before-evil-20261205T170012Z".
std::string beside_path(const std::string& path, const UndoTarget& target, int64_t first_ns);

}  // namespace roam
