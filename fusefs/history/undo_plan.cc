#include "fusefs/history/undo_plan.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <set>

#include "fusefs/oplog/oplog.h"
#include "fusefs/oplog/past_view.h"

namespace roam {

std::string UndoTarget::label() const { return comm ? *comm : "pid " + std::to_string(pid.value_or(0)); }

std::string UndoTarget::file_label() const {
  if (!comm) return "pid-" + std::to_string(pid.value_or(0));
  std::string s = *comm;
  std::replace(s.begin(), s.end(), '/', '_');  // a comm may hold any byte but NUL
  return s;
}

LoggedChange logged_change(const OpRecord& r, const UndoTarget& target) {
  return {r.seq, r.ts_ns, r.kind, target.matches(r.caller), r.path, r.path2};
}

std::string beside_path(const std::string& path, const UndoTarget& target, int64_t first_ns) {
  const time_t secs = static_cast<time_t>(first_ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char when[32];
  std::strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
  const std::string suffix = ".before-" + target.file_label() + "-" + when;
  auto [dir, name] = split_path(path);
  if (name.size() + suffix.size() > kNameMax) name.resize(kNameMax > suffix.size() ? kNameMax - suffix.size() : 0);
  return join_path(dir, name + suffix);
}

namespace {

struct Touch {
  uint64_t first_seq = 0;
  int64_t first_ns = 0;
};

// Keys of `m` equal to `path` or below it, in order ("/a" covers "/a/b", not "/a b").
template <typename Map, typename Visit>
void for_subtree(const Map& m, const std::string& path, Visit&& visit) {
  if (auto it = m.find(path); it != m.end()) visit(it->first, it->second);
  if (path == "/") {
    for (auto it = m.upper_bound("/"); it != m.end(); ++it) visit(it->first, it->second);
    return;
  }
  const std::string lo = path + "/", hi = path + "0";  // '0' follows '/'
  for (auto it = m.lower_bound(lo); it != m.end() && it->first < hi; ++it) visit(it->first, it->second);
}

std::string parent_of(const std::string& path) { return split_path(path).first; }

class Planner {
 public:
  Planner(const std::vector<LoggedChange>& changes, const UndoTarget& target) : target_(target) {
    for (const auto& c : changes)
      for (const std::string* p : {&c.path, &c.path2}) {
        if (p->empty()) continue;
        if (c.by_target) {
          touched_.try_emplace(*p, Touch{c.seq, c.ts_ns});
          continue;
        }
        uint64_t& newest = others_[*p];
        newest = std::max(newest, c.seq);
        // A directory moved, removed or restored by someone else changes
        // every path below it.
        if (c.kind == OpKind::kRename || c.kind == OpKind::kRmdir || c.kind == OpKind::kRestore) {
          uint64_t& moved = moved_[*p];
          moved = std::max(moved, c.seq);
        }
      }
  }

  std::vector<UndoStep> run() {
    for (const auto& [path, touch] : touched_) {
      if (covered(path)) continue;
      plan_path(path, touch);
    }
    std::sort(steps_.begin(), steps_.end(), [](const UndoStep& a, const UndoStep& b) { return a.path < b.path; });
    return std::move(steps_);
  }

 private:
  // Whether a process other than the target changed `path`, something below
  // it, or moved a directory above it, after record `seq`.
  bool others_after(const std::string& path, uint64_t seq) const {
    bool found = false;
    for_subtree(others_, path, [&](const std::string&, uint64_t newest) { found = found || newest > seq; });
    for (std::string a = path; !found && a != "/";) {
      a = parent_of(a);
      if (auto it = moved_.find(a); it != moved_.end()) found = it->second > seq;
    }
    return found;
  }

  bool covered(const std::string& path) const {
    for (std::string a = path; a != "/";) {
      a = parent_of(a);
      if (reverted_.count(a)) return true;
    }
    return false;
  }

  void plan_path(const std::string& path, const Touch& touch) {
    Touch earliest = touch;
    bool below = false;
    for_subtree(touched_, path, [&](const std::string& p, const Touch& t) {
      below = below || p != path;
      if (t.first_seq < earliest.first_seq) earliest = t;
    });
    if (!others_after(path, earliest.first_seq)) return revert(path, earliest);
    if (!below) {
      steps_.push_back({UndoStep::Kind::kBeside, path, touch.first_seq - 1, touch.first_seq,
                        beside_path(path, target_, touch.first_ns), ""});
      return;
    }
    if (!others_after(path, touch.first_seq)) return revert_with_earlier_inside(path, touch);
    keep(path, touch, "other processes changed it or something inside it since; what " + target_.label() +
                          " changed inside is undone path by path");
  }

  void revert(const std::string& path, const Touch& t) {
    steps_.push_back({UndoStep::Kind::kRevert, path, t.first_seq - 1, t.first_seq, "", ""});
    reverted_.insert(path);
  }

  // `path` goes back to just before the target's change to it; what the
  // target changed inside it before that (others having changed it in
  // between) stays as it was then, and is listed.
  void revert_with_earlier_inside(const std::string& path, const Touch& t) {
    revert(path, t);
    for_subtree(touched_, path, [&](const std::string& p, const Touch& inner) {
      if (p == path || inner.first_seq >= t.first_seq) return;
      keep(p, inner, "comes back as it was before op " + std::to_string(t.first_seq) + " with " + path +
                         "; for its state before " + target_.label() + " changed it: roam restore " + p +
                         " --before-op " + std::to_string(inner.first_seq));
    });
  }

  void keep(const std::string& path, const Touch& t, std::string reason) {
    steps_.push_back({UndoStep::Kind::kKept, path, t.first_seq - 1, t.first_seq, "", std::move(reason)});
  }

  const UndoTarget& target_;
  std::map<std::string, Touch> touched_;      // path -> the target's first change to it
  std::map<std::string, uint64_t> others_;    // path -> newest change to it by others
  std::map<std::string, uint64_t> moved_;     // path -> newest rename/rmdir/restore of it by others
  std::set<std::string> reverted_;
  std::vector<UndoStep> steps_;
};

}  // namespace

std::vector<UndoStep> plan_undo(const std::vector<LoggedChange>& changes, const UndoTarget& target) {
  return Planner(changes, target).run();
}

}  // namespace roam
