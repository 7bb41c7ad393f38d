#include "fusefs/history/undo.h"

#include <map>
#include <set>

#include "base/timefmt.h"
#include "fusefs/engine/mutation.h"
#include "fusefs/history/restore_plan.h"
#include "fusefs/oplog/oplog.h"

namespace roam {

namespace {

std::string source_of(const UndoRequest& req) {
  std::string s = "undo of " + req.target.label();
  if (req.since_ns) s += " since " + format_time_utc(*req.since_ns);
  return s;
}

// The steps, and for each kRevert or kBeside step the restore it makes.
struct Planned {
  std::vector<UndoStep> steps;
  std::vector<std::optional<RestoreRequest>> requests;  // one per step
};

// A name beside `step.path` that is free now and not taken by another step.
Result<std::string> free_beside_name(PastView& now, const std::string& wanted, std::set<std::string>& taken) {
  std::string name = wanted;
  for (int n = 2;; ++n) {
    ROAM_ASSIGN(auto there, now.resolve(name));
    if (!there && taken.insert(name).second) return name;
    name = wanted + "." + std::to_string(n);
  }
}

Result<Planned> plan(const StoreTxn& txn, const UndoRequest& req) {
  oplog::Filter filter;
  filter.since_ns = req.since_ns;
  std::vector<LoggedChange> changes;
  ROAM_TRY(oplog::scan(txn, filter, [&](const OpRecord& r) {
    changes.push_back(logged_change(r, req.target));
    return true;
  }));
  Planned p;
  p.steps = plan_undo(changes, req.target);
  if (p.steps.empty())
    return Status::not_found("the op log holds no change by " + req.target.label() +
                             (req.since_ns ? " since " + format_time_utc(*req.since_ns) : ""));
  PastView now(txn, PastView::kNow);
  std::set<std::string> taken;
  const std::string source = source_of(req);
  for (const UndoStep& step : p.steps) {
    if (step.kind == UndoStep::Kind::kKept) {
      p.requests.emplace_back();
      continue;
    }
    RestoreRequest r{step.path, step.at_seq, std::nullopt, req.dry_run, source};
    if (step.kind == UndoStep::Kind::kBeside) {
      ROAM_ASSIGN(std::string to, free_beside_name(now, step.beside, taken));
      r.to = std::move(to);
    }
    p.requests.push_back(std::move(r));
  }
  return p;
}

bool same_restores(const std::vector<std::optional<RestoreRequest>>& a,
                   const std::vector<std::optional<RestoreRequest>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].has_value() != b[i].has_value()) return false;
    if (a[i] && (a[i]->path != b[i]->path || a[i]->at_seq != b[i]->at_seq || a[i]->to != b[i]->to)) return false;
  }
  return true;
}

// The deepest directory (or path) holding every path in `paths`.
std::string common_ancestor(const std::vector<std::string>& paths) {
  std::string common = paths.front();
  for (const auto& p : paths)
    while (!oplog::path_within(p, common)) common = split_path(common).first;
  return common;
}

RestoreChange kept_line(const UndoStep& step, const std::string& why) {
  return {RestoreChange::Kind::kKept, step.path, why};
}

void merge(RestoreResult& into, RestoreResult&& from) {
  auto append = [](auto& to, auto& more) { to.insert(to.end(), more.begin(), more.end()); };
  append(into.changes, from.changes);
  append(into.changed_inodes, from.changed_inodes);
  append(into.changed_data, from.changed_data);
  append(into.changed_entries, from.changed_entries);
  append(into.retired_files, from.retired_files);
}

// Builds every restore plan before the first write (restore_plan.h). A plan
// that cannot be made because a path is gone now becomes a kept line.
class UndoWriter {
 public:
  UndoWriter(Mutation& m, const Caller& caller, const UndoRequest& req, Planned& planned)
      : m_(m), caller_(caller), req_(req), planned_(planned), plans_(planned.steps.size()) {}

  Result<UndoResult> run() {
    ROAM_TRY(make_plans());
    UndoResult out;
    out.steps = planned_.steps;
    out.source = source_of(req_);
    for (size_t i = 0; i < plans_.size(); ++i) ROAM_TRY(apply(i, out.restore));
    if (targets_.empty()) return out;
    OpRecord& rec = m_.record();
    rec.path = common_ancestor(targets_);
    rec.ino = ancestor_ino_;
    rec.name = out.source;
    return out;
  }

  // Whether any restore changed something (so the record is worth logging).
  bool changed() const { return changed_; }

 private:
  Status make_plans() {
    std::set<uint64_t> in_place;
    for (size_t i = 0; i < plans_.size(); ++i) {
      const auto& r = planned_.requests[i];
      if (!r) continue;
      PastView past(m_.txn(), r->at_seq);
      auto plan = plan_restore(m_.txn(), past, *r);
      if (!plan && plan.status().err() == ENOENT) {
        gone_[i] = plan.status().message();
        continue;
      }
      if (!plan) return plan.status();
      // An inode restored in place by two steps would be written twice: the
      // later step restores it as a copy.
      for (auto it = plan->in_place.begin(); it != plan->in_place.end();)
        it = in_place.insert(*it).second ? std::next(it) : plan->in_place.erase(it);
      targets_.push_back(r->to.value_or(r->path));
      plans_[i] = std::move(*plan);
    }
    if (targets_.empty()) return Status::ok();
    PastView now(m_.txn(), PastView::kNow);
    ROAM_ASSIGN(auto ino, now.resolve(common_ancestor(targets_)));
    ancestor_ino_ = ino.value_or(0);
    return Status::ok();
  }

  Status apply(size_t i, RestoreResult& out) {
    const UndoStep& step = planned_.steps[i];
    if (step.kind == UndoStep::Kind::kKept) {
      out.changes.push_back(kept_line(step, step.reason));
      return Status::ok();
    }
    if (auto g = gone_.find(i); g != gone_.end()) {
      out.changes.push_back(kept_line(step, "not undone: " + g->second));
      return Status::ok();
    }
    ROAM_ASSIGN(AppliedPlan applied, apply_restore_plan(m_, *plans_[i], caller_));
    changed_ = changed_ || !applied.result.changes.empty();
    if (step.kind == UndoStep::Kind::kBeside)
      out.changes.push_back(kept_line(step, "kept as other processes left it; as " + req_.target.label() +
                                                " found it: " + *planned_.requests[i]->to));
    merge(out, std::move(applied.result));
    return Status::ok();
  }

  Mutation& m_;
  const Caller& caller_;
  const UndoRequest& req_;
  Planned& planned_;
  std::vector<std::optional<RestorePlan>> plans_;
  std::map<size_t, std::string> gone_;  // step -> why its restore cannot be made
  std::vector<std::string> targets_;    // the paths the restores change
  uint64_t ancestor_ino_ = 0;
  bool changed_ = false;
};

Status check_all(const Planned& p, const RestoreCheck& allowed) {
  for (const auto& r : p.requests) {
    if (!r) continue;
    Status s = allowed(*r);
    // A path gone now is reported as kept, not refused (UndoWriter).
    if (!s && s.err() != ENOENT) return s.with_context(r->path);
  }
  return Status::ok();
}

}  // namespace

Result<UndoResult> undo_process(Store& store, const Caller& caller, const UndoRequest& req,
                                const RestoreCheck& allowed) {
  std::optional<Planned> checked;
  if (allowed) {
    ROAM_ASSIGN(ReadTxn txn, store.begin_read());
    ROAM_ASSIGN(Planned p, plan(txn, req));
    checked = std::move(p);
  }
  if (checked) ROAM_TRY(check_all(*checked, allowed));
  ROAM_ASSIGN(Mutation m, Mutation::begin(store, OpKind::kRestore, caller));
  ROAM_ASSIGN(Planned planned, plan(m.txn(), req));
  if (checked && (checked->steps != planned.steps || !same_restores(checked->requests, planned.requests)))
    return Status::error(EAGAIN, "the disk changed while the undo was being checked; run it again");
  UndoWriter writer(m, caller, req, planned);
  ROAM_ASSIGN(UndoResult result, writer.run());
  if (req.dry_run || !writer.changed()) return result;  // the transaction aborts
  ROAM_ASSIGN(OpRecord committed, m.commit());
  result.restore.record = std::move(committed);
  return result;
}

}  // namespace roam
