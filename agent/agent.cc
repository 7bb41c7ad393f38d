#include "agent/agent.h"

#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <thread>
#include <vector>

#include "agent/busy.h"
#include "agent/health.h"
#include "protocol/transport.h"
#include "base/sys/daemon.h"
#include "base/sys/files.h"
#include "base/sys/mountinfo.h"

namespace roam::agent {

namespace {

uint64_t code_of(const Status& s) { return static_cast<uint64_t>(s.err()); }

// A new disk's root belongs to uid 0 (the broker made it): the desktop that
// first attaches it gives it to its user, by the uid and gid this desktop's
// /etc/passwd names, private to them (0700), so that the user owns their
// home (and keeps it on every desktop that gives them the same uid). A home
// owned by anyone else is left alone, and so is a user this desktop does not
// know.
Status give_home_to_user(const std::string& home, const std::string& user) {
  struct stat st {};
  if (::stat(home.c_str(), &st) != 0) return errno_error("cannot stat " + home);
  if (st.st_uid != 0) return Status::ok();
  std::vector<char> buf(16384);
  passwd pw {}, *found = nullptr;
  if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found || found->pw_uid == 0)
    return Status::ok();
  if (::chown(home.c_str(), found->pw_uid, found->pw_gid) != 0 || ::chmod(home.c_str(), 0700) != 0)
    return errno_error("cannot give " + home + " to " + user);
  return Status::ok();
}

}  // namespace

Agent::~Agent() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

Result<std::unique_ptr<Agent>> Agent::create(AgentConfig cfg) {
  if (!proto::valid_name(cfg.desktop)) return Status::invalid("desktop id '" + cfg.desktop + "' is not a valid name");
  std::unique_ptr<Agent> a(new Agent(std::move(cfg)));
  ROAM_ASSIGN(a->keys_, proto::read_key_file(a->cfg_.key_file));
  ROAM_ASSIGN(a->broker_key_, proto::key_from_hex(a->cfg_.broker_public_key, "broker-public-key"));
  ROAM_ASSIGN(a->driver_, make_mount_driver(a->cfg_.mount_driver));
  ROAM_ASSIGN(a->signal_fd_, stop_signal_fd());
  return a;
}

Status Agent::connect() {
  socket_.reset();
  ROAM_ASSIGN(auto s, proto::connect_dealer(ctx_, cfg_.broker, keys_, broker_key_));
  socket_.emplace(std::move(s));
  liveness_ = proto::kAgentBrokerLiveness;
  send(proto::Register{cfg_.desktop});
  return Status::ok();
}

void Agent::send(const proto::Message& m) {
  if (!socket_) return;
  if (Status s = proto::send(*socket_, m); !s)
    std::fprintf(stderr, "roam-agent: cannot send %s: %s\n", proto::type_name(proto::type_of(m)).data(),
                 s.message().c_str());
}

Status Agent::run() {
  ROAM_TRY(connect());
  std::fprintf(stderr, "roam-agent: desktop %s connecting to %s\n", cfg_.desktop.c_str(), cfg_.broker.c_str());
  auto next_beat = Clock::now() + std::chrono::milliseconds(proto::kHeartbeatIntervalMs);
  next_health_ = Clock::now();
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now());
    zmq::pollitem_t items[] = {{socket_->handle(), 0, ZMQ_POLLIN, 0}, {nullptr, signal_fd_, ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, 2, std::max(wait, std::chrono::milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return Status::error(e.num(), std::string("poll: ") + e.what());
    }
    if (items[1].revents & ZMQ_POLLIN) return Status::ok();
    while (items[0].revents & ZMQ_POLLIN) {
      ROAM_ASSIGN(auto got, proto::receive(*socket_));
      if (!got) break;
      liveness_ = proto::kAgentBrokerLiveness;
      backoff_ms_ = proto::kReconnectInitialMs;
      if (*got) on_message(got->value());
      else std::fprintf(stderr, "roam-agent: bad message from the broker: %s\n", got->status().message().c_str());
    }
    if (Clock::now() >= next_beat) {
      on_interval();
      next_beat = Clock::now() + std::chrono::milliseconds(proto::kHeartbeatIntervalMs);
    }
  }
}

void Agent::on_interval() {
  int st = 0;
  while (::waitpid(-1, &st, WNOHANG) > 0) {
  }  // children of health checks and of killed busy processes
  if (--liveness_ <= 0) {
    std::fprintf(stderr, "roam-agent: broker silent; reconnecting in %d ms\n", backoff_ms_);
    socket_.reset();
    std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms_));
    backoff_ms_ = std::min(backoff_ms_ * 2, proto::kReconnectMaxMs);
    if (Status s = connect(); !s) std::fprintf(stderr, "roam-agent: %s\n", s.message().c_str());
    return;
  }
  send(proto::Heartbeat{});
  unmount_fenced_homes();
  if (cfg_.health_checks.empty() || Clock::now() < next_health_) return;
  next_health_ = Clock::now() + std::chrono::milliseconds(cfg_.health_interval_ms);
  auto failure = first_failing_check(cfg_.health_checks, cfg_.health_timeout_ms);
  if (failure && !damage_reported_) {
    std::fprintf(stderr, "roam-agent: OS damage: %s\n", failure->c_str());
    send(proto::Damage{*failure});
  }
  damage_reported_ = failure.has_value();
}

// A home whose disk the broker fenced (while this agent was unreachable)
// answers every access with ENOTCONN; unmount it so that the desktop shows an
// empty home rather than a broken one.
void Agent::unmount_fenced_homes() {
  for (const auto& m : read_mountinfo()) {
    if (m.fstype != "fuse.roamfs" || m.mount_point.rfind(cfg_.home_base + "/", 0) != 0) continue;
    struct statfs fs {};
    if (::statfs(m.mount_point.c_str(), &fs) == 0 || errno != ENOTCONN) continue;
    std::fprintf(stderr, "roam-agent: %s was fenced by the broker; unmounting it\n", m.mount_point.c_str());
    ::umount2(m.mount_point.c_str(), MNT_DETACH);
  }
}

void Agent::on_message(const proto::Message& m) {
  std::visit(proto::Overloaded{
                 [&](const proto::Detach& d) { send(detach(d)); },
                 [&](const proto::Attach& a) { send(attach(a)); },
                 [&](const proto::Reply& r) {
                   if (r.code == 0) return;
                   std::fprintf(stderr, "roam-agent: broker says: %s\n", r.message.c_str());
                   if (r.code == ENOTCONN) send(proto::Register{cfg_.desktop});
                 },
                 [&](const auto&) {},
             },
             m);
}

proto::DetachDone Agent::detach(const proto::Detach& d) {
  const std::string home = home_of(d.user);
  Status st;
  if (driver_->mounted(home)) {
    int fd = ::open(home.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      ::syncfs(fd);  // fails harmlessly on a fenced (aborted) mount
      ::close(fd);
    }
    st = release_busy(home, d.force, static_cast<int>(d.grace_ms));
    if (st) st = driver_->detach(home);
  }
  std::fprintf(stderr, "roam-agent: detach %s: %s\n", home.c_str(), st ? "ok" : st.message().c_str());
  return proto::DetachDone{d.request_id, code_of(st), st ? "detached" : st.message()};
}

proto::AttachDone Agent::attach(const proto::Attach& a) {
  const std::string home = home_of(a.user);
  const std::string export_path = local_export(a.export_path);
  Status st = driver_->attach(export_path, home);
  if (st) st = give_home_to_user(home, a.user);
  std::fprintf(stderr, "roam-agent: attach %s at %s: %s\n", export_path.c_str(), home.c_str(),
               st ? "ok" : st.message().c_str());
  return proto::AttachDone{a.request_id, code_of(st), st ? "attached" : st.message()};
}

std::string Agent::local_export(const std::string& export_path) const {
  if (cfg_.export_dir.empty()) return export_path;
  const size_t slash = export_path.rfind('/');
  return cfg_.export_dir + "/" + (slash == std::string::npos ? export_path : export_path.substr(slash + 1));
}

}  // namespace roam::agent
