#include "broker/switch.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <set>

namespace roam::broker {

namespace {

constexpr std::array<std::string_view, 5> kPhaseNames = {"provision", "detach", "release", "export", "attach"};

// "checked=0,detached=12" as reply rows: a (step, ms) table.
std::vector<std::string> step_table(const std::string& steps) {
  std::vector<std::string> rows{proto::join_cells({"step", "ms"})};
  size_t start = 0;
  while (start < steps.size()) {
    size_t comma = std::min(steps.find(',', start), steps.size());
    std::string item = steps.substr(start, comma - start);
    size_t eq = std::min(item.find('='), item.size());
    rows.push_back(proto::join_cells({item.substr(0, eq), eq < item.size() ? item.substr(eq + 1) : ""}));
    start = comma + 1;
  }
  return rows;
}

}  // namespace

Status parse_port_range(std::string_view text, RemoteConfig& out) {
  out.first_port = out.last_port = 0;
  if (text.empty()) return Status::ok();
  const size_t dash = text.find('-');
  auto port = [](std::string_view s, uint16_t& p) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size() && p != 0;
  };
  if (dash == std::string_view::npos || !port(text.substr(0, dash), out.first_port) ||
      !port(text.substr(dash + 1), out.last_port) || out.first_port > out.last_port) {
    out.first_port = out.last_port = 0;
    return Status::invalid("remote-ports '" + std::string(text) + "' is not LOW-HIGH with 1 <= LOW <= HIGH <= 65535");
  }
  return Status::ok();
}

Result<uint16_t> choose_remote_port(const RemoteConfig& cfg, const std::string& user, uint16_t current,
                                    const std::vector<std::pair<std::string, DiskRecord>>& disks) {
  if (cfg.first_port == 0)
    return Status::invalid("a remote desktop needs a port for the disk of " + user +
                           ", and the broker has no remote-ports configured");
  std::set<uint16_t> taken;
  for (const auto& [other, rec] : disks)
    if (other != user && rec.remote_port != 0) taken.insert(rec.remote_port);
  if (current >= cfg.first_port && current <= cfg.last_port && !taken.count(current)) return current;
  for (uint32_t p = cfg.first_port; p <= cfg.last_port; ++p)
    if (!taken.count(static_cast<uint16_t>(p))) return static_cast<uint16_t>(p);
  return Status::error(ENOSPC, "every port of remote-ports " + std::to_string(cfg.first_port) + "-" +
                                   std::to_string(cfg.last_port) + " belongs to another disk");
}

std::string_view phase_name(SwitchPhase p) { return kPhaseNames[static_cast<size_t>(p)]; }

std::optional<SwitchPhase> phase_from_name(std::string_view name) {
  for (size_t i = 0; i < kPhaseNames.size(); ++i)
    if (kPhaseNames[i] == name) return static_cast<SwitchPhase>(i);
  return std::nullopt;
}

Status Switcher::check(const SwitchOrder& order, const std::optional<AttachmentRecord>& att) const {
  if (running_for(order.user)) return Status::error(EBUSY, "a switch of user " + order.user + " is already running");
  ROAM_ASSIGN(auto user, env_.registry.get(Table::kUsers, order.user));
  if (!user) return Status::not_found("user " + order.user + " does not exist");
  ROAM_ASSIGN(auto disk, find_disk(env_.registry, order.user));
  if (!disk) return Status::not_found("user " + order.user + " has no disk (roamctl disk create " + order.user + ")");
  ROAM_ASSIGN(auto desktop, find_desktop(env_.registry, order.target));
  if (desktop && desktop->driver == proto::kMountDriverRemote && env_.remote.first_port == 0)
    return Status::invalid("desktop " + order.target + " uses the remote driver and the broker has no remote-ports");
  if (desktop && desktop->state != "ok")
    return Status::error(EHOSTDOWN, "desktop " + order.target + " is " + desktop->state + " and cannot take a user");
  ROAM_ASSIGN(auto occupant, user_on_desktop(env_.registry, order.target));
  if (occupant && *occupant != order.user)
    return Status::error(EBUSY, "desktop " + order.target + " is in use by user " + *occupant);
  if (occupant && att && att->desktop == order.target && order.reason == "request")
    return Status::error(EALREADY, "user " + order.user + " is already on desktop " + order.target);
  for (const auto& [other, job] : jobs_)
    if (job.intent.target == order.target)
      return Status::error(EBUSY, "desktop " + order.target + " is the target of a running switch of " + other);
  return Status::ok();
}

Status Switcher::start(SwitchOrder order) {
  ROAM_ASSIGN(auto att, find_attachment(env_.registry, order.user));
  ROAM_TRY(check(order, att));
  ROAM_ASSIGN(auto desktop, find_desktop(env_.registry, order.target));
  if (!desktop) ROAM_TRY(env_.provision(order.target));
  if (next_id_ == 0) next_id_ = static_cast<uint64_t>(env_.clock.wall_ns() / 1000);
  Job job;
  job.user = order.user;
  job.requester = order.requester;
  job.intent = IntentRecord{next_id_++, att ? att->desktop : "", order.target, order.reason,
                            std::string(phase_name(SwitchPhase::kProvision)), env_.clock.wall_ns(), "", order.force};
  auto& j = jobs_[order.user] = std::move(job);
  j.deadline = deadline_in(env_.timeouts.provision_ms);
  step_done(j, "checked");
  advance(j);
  return Status::ok();
}

Status Switcher::resume() {
  ROAM_ASSIGN(auto intents, env_.registry.list(Table::kIntents));
  for (const auto& [user, row] : intents) {
    ROAM_ASSIGN(auto intent, intent_from_row(user, row));
    auto phase = phase_from_name(intent.phase);
    if (!phase) return Status::corrupt("intent of user " + user + " has unknown phase " + intent.phase);
    Job& j = jobs_[user];
    j.user = user;
    j.intent = intent;
    j.resumed = true;
    // A detach may have been answered to the previous run: ask again (agents
    // answer a repeated detach of an unmounted home with success).
    j.phase = *phase == SwitchPhase::kProvision ? SwitchPhase::kDetach : *phase;
    int timeout = j.phase == SwitchPhase::kAttach ? env_.timeouts.attach_ms : env_.timeouts.detach_ms;
    j.deadline = deadline_in(timeout);
    std::fprintf(stderr, "roam-broker: resuming the switch of %s to %s at phase %s\n", user.c_str(),
                 intent.target.c_str(), intent.phase.c_str());
    advance(j);
  }
  return Status::ok();
}

Status Switcher::enter(Job& job, SwitchPhase phase, int timeout_ms) {
  job.phase = phase;
  job.command_sent = false;
  job.deadline = deadline_in(timeout_ms);
  job.intent.phase = std::string(phase_name(phase));
  return env_.registry.put(Table::kIntents, job.user, to_row(job.intent));
}

Switcher::Clock::time_point Switcher::deadline_in(int timeout_ms) const {
  return env_.clock.now() + std::chrono::milliseconds(timeout_ms);
}

void Switcher::step_done(Job& job, const std::string& step) {
  if (!job.intent.steps.empty()) job.intent.steps += ",";
  const int64_t ms = (env_.clock.wall_ns() - job.intent.started_ns) / 1'000'000;
  job.intent.steps += step + "=" + std::to_string(ms);
}

void Switcher::send_command(Job& job) {
  const auto& who = job.phase == SwitchPhase::kDetach ? job.intent.source : job.intent.target;
  if (job.command_sent || !env_.peers.alive(who)) return;
  proto::Message m;
  if (job.phase == SwitchPhase::kDetach) {
    m = proto::Detach{job.intent.switch_id, job.user, job.intent.force, static_cast<uint64_t>(env_.timeouts.grace_ms)};
  } else {
    auto att = find_attachment(env_.registry, job.user);
    if (!att || !*att) return;
    const auto& a = **att;
    m = proto::Attach{job.intent.switch_id, job.user, a.remote_export.empty() ? a.mount_point : a.remote_export};
  }
  job.command_sent = env_.send(who, m).is_ok();
}

Status Switcher::end_epoch(const std::string& user, bool fence) {
  ROAM_ASSIGN(auto att, find_attachment(env_.registry, user));
  if (!att || att->mount_point.empty()) return Status::ok();
  ROAM_TRY(env_.disks.stop(static_cast<pid_t>(att->roamfs_pid), att->mount_point, fence));
  att->desktop.clear();
  att->mount_point.clear();
  att->roamfs_pid = 0;
  return env_.registry.put(Table::kAttachments, user, to_row(*att));
}

Status Switcher::release(Job& job) {
  ROAM_TRY(end_epoch(job.user, !job.detached_cleanly));
  step_done(job, job.detached_cleanly ? "released" : "fenced");
  return enter(job, SwitchPhase::kExport, env_.timeouts.attach_ms);
}

Result<std::pair<AttachmentRecord, std::optional<RemoteServe>>> Switcher::plan_epoch(const Job& job,
                                                                                     DiskRecord& disk) {
  const std::string& target = job.intent.target;
  ROAM_ASSIGN(auto desktop, find_desktop(env_.registry, target));
  disk.epoch += 1;
  const std::string leaf = "/" + job.user + "@" + std::to_string(disk.epoch);
  if (!desktop || desktop->driver != proto::kMountDriverRemote) {
    ROAM_ASSIGN(auto dir, env_.disks.export_dir(target));
    return std::pair{AttachmentRecord{"", disk.epoch, dir + leaf, 0, ""}, std::optional<RemoteServe>()};
  }
  if (desktop->registered_key.empty())
    return Status::error(EPERM, "desktop " + target + " uses the remote driver but its agent's key is unknown");
  ROAM_ASSIGN(auto disks, env_.registry.list(Table::kDisks));
  std::vector<std::pair<std::string, DiskRecord>> records;
  for (const auto& [user, row] : disks) {
    ROAM_ASSIGN(auto rec, disk_from_row(user, row));
    records.emplace_back(user, std::move(rec));
  }
  ROAM_ASSIGN(disk.remote_port, choose_remote_port(env_.remote, job.user, disk.remote_port, records));
  ROAM_ASSIGN(auto dir, env_.disks.private_dir());
  ROAM_ASSIGN(auto key, env_.disks.remote_key(job.user));
  const std::string where = "tcp://" + env_.remote.address + ":" + std::to_string(disk.remote_port) + "#" + key;
  return std::pair{AttachmentRecord{"", disk.epoch, dir + leaf, 0, where},
                   std::optional<RemoteServe>(RemoteServe{disk.remote_port, desktop->registered_key, disk.epoch})};
}

// The new epoch and its mount point are recorded before its roamfs starts,
// so that a broker killed while it starts leaves a record of what to fence:
// the resumed export finds that epoch in the attachment and ends it first
// (its roamfs, unknown by pid, is found by its mount point).
Status Switcher::export_disk(Job& job) {
  ROAM_TRY(end_epoch(job.user, true));
  ROAM_ASSIGN(auto disk, find_disk(env_.registry, job.user));
  if (!disk) return Status::not_found("the disk of user " + job.user + " disappeared during the switch");
  ROAM_ASSIGN(auto plan, plan_epoch(job, *disk));
  auto& [att, remote] = plan;
  ROAM_TRY(env_.registry.apply({{Table::kDisks, job.user, to_row(*disk)},
                                {Table::kAttachments, job.user, to_row(att)}}));
  ROAM_ASSIGN(att.roamfs_pid, env_.disks.start(job.user, disk->store, att.mount_point, remote));
  job.intent.phase = std::string(phase_name(SwitchPhase::kAttach));
  ROAM_TRY(env_.registry.apply({{Table::kAttachments, job.user, to_row(att)},
                                {Table::kIntents, job.user, to_row(job.intent)}}));
  step_done(job, "exported");
  return enter(job, SwitchPhase::kAttach, env_.timeouts.attach_ms);
}

void Switcher::advance(Job& job) {
  Status st;
  for (;;) {
    switch (job.phase) {
      case SwitchPhase::kProvision:
        if (!env_.peers.alive(job.intent.target)) return;
        step_done(job, "target-ready");
        st = enter(job, SwitchPhase::kDetach, env_.timeouts.detach_ms);
        break;
      case SwitchPhase::kDetach:
        if (job.intent.source.empty()) {
          job.detached_cleanly = true;
          st = enter(job, SwitchPhase::kRelease, 0);
          break;
        }
        // A dead source is fenced at once; after a broker restart its agent
        // gets until the deadline to reconnect and detach cleanly.
        if (!job.resumed && !env_.peers.alive(job.intent.source)) {
          step_done(job, "source-dead");
          st = enter(job, SwitchPhase::kRelease, 0);
          break;
        }
        send_command(job);
        return;
      case SwitchPhase::kRelease:
        st = release(job);
        break;
      case SwitchPhase::kExport:
        st = export_disk(job);
        break;
      case SwitchPhase::kAttach:
        send_command(job);
        return;
    }
    if (!st) return fail(job, st);
  }
}

Switcher::Job* Switcher::job_waiting_on(const std::string& desktop, SwitchPhase phase, uint64_t request_id) {
  for (auto& [user, job] : jobs_) {
    const auto& who = phase == SwitchPhase::kDetach ? job.intent.source : job.intent.target;
    if (job.phase == phase && who == desktop && job.intent.switch_id == request_id) return &job;
  }
  return nullptr;
}

void Switcher::on_register(const std::string& desktop) {
  for (auto& [user, job] : jobs_) {
    if (job.intent.source == desktop || job.intent.target == desktop) job.command_sent = false;
  }
  for (auto it = jobs_.begin(); it != jobs_.end();) advance((it++)->second);
}

void Switcher::on_detach_done(const std::string& desktop, const proto::DetachDone& m) {
  Job* job = job_waiting_on(desktop, SwitchPhase::kDetach, m.request_id);
  if (!job) return;
  if (m.code == EBUSY && !job->intent.force) {
    return finish(*job, Status::error(EBUSY, "desktop " + desktop + " refused to detach: " + m.message));
  }
  job->detached_cleanly = m.code == 0;
  step_done(*job, m.code == 0 ? "detached" : "detach-failed");
  if (Status st = enter(*job, SwitchPhase::kRelease, 0); !st) return finish(*job, st);
  advance(*job);
}

void Switcher::on_attach_done(const std::string& desktop, const proto::AttachDone& m) {
  Job* job = job_waiting_on(desktop, SwitchPhase::kAttach, m.request_id);
  if (!job) return;
  if (m.code != 0)
    return fail(*job, Status::error(proto::errno_of(m.code), "desktop " + desktop + " could not attach: " + m.message));
  auto att = find_attachment(env_.registry, job->user);
  if (!att || !*att) return finish(*job, att ? Status::not_found("attachment vanished") : att.status());
  (*att)->desktop = desktop;
  step_done(*job, "attached");
  Status st = env_.registry.apply({{Table::kAttachments, job->user, to_row(**att)}});
  finish(*job, st);
}

void Switcher::on_tick() {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& job = (it++)->second;
    if (env_.clock.now() < job.deadline) {
      if (job.phase == SwitchPhase::kDetach || job.phase == SwitchPhase::kAttach) send_command(job);
      continue;
    }
    switch (job.phase) {
      case SwitchPhase::kProvision:
        finish(job, Status::error(ETIMEDOUT, "desktop " + job.intent.target + " did not come up within " +
                                                 std::to_string(env_.timeouts.provision_ms / 1000) + " s"));
        break;
      case SwitchPhase::kDetach:  // unresponsive or dead source: fence it
        step_done(job, "detach-timeout");
        if (Status st = enter(job, SwitchPhase::kRelease, 0); !st) {
          finish(job, st);
          break;
        }
        advance(job);
        break;
      default:
        fail(job, Status::error(ETIMEDOUT, "desktop " + job.intent.target + " did not attach the disk within " +
                                                 std::to_string(env_.timeouts.attach_ms / 1000) + " s"));
    }
  }
}

// An export or attach that failed leaves no epoch behind: the target may
// hold the new mount half made, so its roamfs is fenced, and the disk stays
// attached to no desktop, with nothing exported (the audit says why).
void Switcher::fail(Job& job, const Status& result) {
  if (job.phase != SwitchPhase::kExport && job.phase != SwitchPhase::kAttach) return finish(job, result);
  step_done(job, "rolled-back");
  if (Status undone = end_epoch(job.user, true); !undone)
    return finish(job, Status::error(result.err(), result.message() + "; rolling back failed: " + undone.message()));
  finish(job, result);
}

void Switcher::finish(Job& job, const Status& result) {
  step_done(job, "end");
  const auto& in = job.intent;
  Status persisted = env_.registry.del(Table::kIntents, job.user);
  Status audited = env_.registry.append_audit({std::to_string(env_.clock.wall_ns()), std::to_string(in.switch_id),
                                               job.user, in.source, in.target, in.reason,
                                               result ? "ok" : bounded_cell(result.message()), in.steps});
  Status st = !result ? result : !persisted ? persisted : audited;
  std::fprintf(stderr, "roam-broker: switch %llu of %s from %s to %s (%s): %s [%s]\n",
               static_cast<unsigned long long>(in.switch_id), job.user.c_str(),
               in.source.empty() ? "-" : in.source.c_str(), in.target.c_str(), in.reason.c_str(),
               st ? "ok" : st.message().c_str(), in.steps.c_str());
  if (job.requester) {
    env_.reply(*job.requester, st, step_table(in.steps));
  }
  jobs_.erase(job.user);
}

std::vector<std::vector<std::string>> Switcher::describe() const {
  std::vector<std::vector<std::string>> out;
  for (const auto& [user, job] : jobs_)
    out.push_back({user, job.intent.source, job.intent.target, std::string(phase_name(job.phase)), job.intent.reason});
  return out;
}

}  // namespace roam::broker
