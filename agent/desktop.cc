#include "agent/desktop.h"

#include <cstdio>
#include <string_view>

namespace roam::agent {

namespace {

uint64_t code_of(const Status& s) { return static_cast<uint64_t>(s.err()); }

}  // namespace

std::vector<proto::Message> Desktop::on_message(const proto::Message& m) {
  if (const auto* d = std::get_if<proto::Detach>(&m)) return {detach(*d)};
  if (const auto* a = std::get_if<proto::Attach>(&m)) return {attach(*a)};
  return {};
}

std::vector<proto::Message> Desktop::on_interval(Clock::time_point now) {
  unmount_fenced_homes();
  if (auto damage = check_health(now)) return {*damage};
  return {};
}

proto::DetachDone Desktop::detach(const proto::Detach& d) {
  const std::string home = home_of(d.user);
  Status st;
  if (driver_.mounted(home)) {
    os_.sync(home);
    st = os_.release_busy(home, d.force, static_cast<int>(d.grace_ms));
    if (st) st = driver_.detach(home);
  }
  std::fprintf(stderr, "roam-agent: detach %s: %s\n", home.c_str(), st ? "ok" : st.message().c_str());
  return proto::DetachDone{d.request_id, code_of(st), st ? "detached" : st.message()};
}

proto::AttachDone Desktop::attach(const proto::Attach& a) {
  const std::string home = home_of(a.user);
  const std::string export_path = local_export(a.export_path);
  Status st = driver_.attach(export_path, home);
  if (st) st = os_.give_home(home, a.user);
  std::fprintf(stderr, "roam-agent: attach %s at %s: %s\n", export_path.c_str(), home.c_str(),
               st ? "ok" : st.message().c_str());
  return proto::AttachDone{a.request_id, code_of(st), st ? "attached" : st.message()};
}

std::string Desktop::local_export(const std::string& export_path) const {
  constexpr std::string_view kRemote = "tcp://";
  if (export_path.starts_with(kRemote)) {
    const bool no_host = export_path.size() > kRemote.size() && export_path[kRemote.size()] == ':';
    return no_host ? std::string(kRemote) + cfg_.broker_host + export_path.substr(kRemote.size()) : export_path;
  }
  if (cfg_.export_dir.empty()) return export_path;
  const size_t slash = export_path.rfind('/');
  return cfg_.export_dir + "/" + (slash == std::string::npos ? export_path : export_path.substr(slash + 1));
}

// A home whose disk the broker fenced (while this agent was unreachable)
// answers every access with ENOTCONN; unmount it so that the desktop shows an
// empty home rather than a broken one. The look (a statfs of each home) runs
// on a thread of its own, never on the agent's loop: a live disk answers it
// only once its roamfs lets go of the store's writer lock, which a restore
// or an undo of thousands of files holds for seconds, longer than the broker
// waits for a heartbeat. A finished look is acted on at the next interval,
// by mount id: the home may have been detached and mounted again meanwhile,
// and that new mount is live.
void Desktop::unmount_fenced_homes() {
  if (fence_scan_.valid() && fence_scan_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) {
    for (const auto& fenced : fence_scan_.get()) {
      std::fprintf(stderr, "roam-agent: %s was fenced by the broker; unmounting it\n", fenced.mount_point.c_str());
      os_.unmount_fenced(fenced);
    }
  }
  if (!fence_scan_.valid())
    fence_scan_ = std::async(std::launch::async, [this] { return os_.fenced_mounts(cfg_.home_base); });
}

Desktop::~Desktop() {
  if (running_check_.valid()) running_check_.wait();
  if (fence_scan_.valid()) fence_scan_.wait();
}

// The checks run on a thread of their own (std::async), never on the
// agent's loop: a check may take up to health_timeout_ms (10 s), while the
// broker declares a desktop dead after 2 s without a heartbeat. A finished
// run is reported at the next interval; a new run starts when the interval
// is due and the previous one has finished.
std::optional<proto::Damage> Desktop::check_health(Clock::time_point now) {
  if (cfg_.health_checks.empty()) return std::nullopt;
  std::optional<proto::Damage> damage;
  if (running_check_.valid() && running_check_.wait_for(std::chrono::seconds(0)) == std::future_status::ready)
    damage = report(running_check_.get());
  if (!running_check_.valid() && now >= next_health_) {
    next_health_ = now + std::chrono::milliseconds(cfg_.health_interval_ms);
    running_check_ = std::async(std::launch::async, [this] {
      return os_.first_failing_check(cfg_.health_checks, cfg_.health_timeout_ms);
    });
  }
  return damage;
}

bool Desktop::fence_scan_running() const {
  return fence_scan_.valid() && fence_scan_.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
}

bool Desktop::health_check_running() const {
  return running_check_.valid() && running_check_.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
}

std::optional<proto::Damage> Desktop::report(const std::optional<std::string>& failure) {
  const bool newly_failing = failure && !damage_reported_;
  damage_reported_ = failure.has_value();
  if (!newly_failing) return std::nullopt;
  std::fprintf(stderr, "roam-agent: OS damage: %s\n", failure->c_str());
  return proto::Damage{*failure};
}

}  // namespace roam::agent
