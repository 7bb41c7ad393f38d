#include "agent/agent.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <iterator>
#include <thread>

#include "base/sys/daemon.h"
#include "protocol/transport.h"

namespace roam::agent {

namespace {

// "HOST" of "tcp://HOST:PORT" (brackets of an IPv6 address kept): where a
// remote export with no host of its own is served (the storage node runs
// the broker).
std::string endpoint_host(const std::string& endpoint) {
  const size_t start = endpoint.find("://");
  const size_t from = start == std::string::npos ? 0 : start + 3;
  const size_t colon = endpoint.rfind(':');
  return colon == std::string::npos || colon < from ? endpoint.substr(from) : endpoint.substr(from, colon - from);
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
  ROAM_ASSIGN(a->driver_, make_mount_driver(a->cfg_.mount_driver, {a->cfg_.desktop, a->keys_}));
  a->os_ = make_desktop_os();
  const AgentConfig& c = a->cfg_;
  a->desktop_ = std::make_unique<Desktop>(
      DesktopConfig{c.home_base, c.health_checks, c.health_interval_ms, c.health_timeout_ms, c.export_dir,
                    endpoint_host(c.broker)},
      *a->driver_, *a->os_);
  ROAM_ASSIGN(a->signal_fd_, stop_signal_fd());
  if (!c.user_socket.empty()) {
    ROAM_ASSIGN(auto users, UserSocket::listen(c.user_socket));
    a->users_.emplace(std::move(users));
  }
  return a;
}

Status Agent::connect() {
  socket_.reset();
  ROAM_ASSIGN(auto s, proto::connect_dealer(ctx_, cfg_.broker, keys_, broker_key_));
  socket_.emplace(std::move(s));
  liveness_ = proto::kAgentBrokerLiveness;
  send(proto::Register{cfg_.desktop, cfg_.mount_driver});
  return Status::ok();
}

void Agent::send_all(const std::vector<proto::Message>& messages) {
  for (const auto& m : messages) send(m);
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
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_beat - Clock::now());
    std::vector<zmq::pollitem_t> items{{socket_->handle(), 0, ZMQ_POLLIN, 0}, {nullptr, signal_fd_, ZMQ_POLLIN, 0}};
    if (users_)
      for (int fd : users_->poll_fds()) items.push_back({nullptr, fd, ZMQ_POLLIN, 0});
    try {
      zmq::poll(items.data(), items.size(), std::max(wait, std::chrono::milliseconds(0)));
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
    serve_users(items, 2);
    if (Clock::now() >= next_beat) {
      on_interval();
      next_beat = Clock::now() + std::chrono::milliseconds(proto::kHeartbeatIntervalMs);
    }
  }
}

void Agent::serve_users(const std::vector<zmq::pollitem_t>& items, size_t first) {
  if (!users_) return;
  for (size_t i = first; i < items.size(); ++i) {
    if (!(items[i].revents & ZMQ_POLLIN)) continue;
    for (auto& request : users_->on_readable(items[i].fd, Clock::now())) {
      if (!socket_) {
        users_->on_reply(proto::reply_for(request.request_id, Status::error(EHOSTDOWN, "the broker is not connected")));
        continue;
      }
      send(request);
    }
  }
}

void Agent::on_interval() {
  int st = 0;
  while (::waitpid(-1, &st, WNOHANG | __WNOTHREAD) > 0) {
  }  // this thread's children only: a health check's are waited for by the thread that runs it
  if (users_) users_->on_interval(Clock::now());
  if (--liveness_ <= 0) return reconnect();
  send(proto::Heartbeat{});
  send_all(desktop_->on_interval(Clock::now()));
}

void Agent::reconnect() {
  std::fprintf(stderr, "roam-agent: broker silent; reconnecting in %d ms\n", backoff_ms_);
  if (users_) users_->fail_waiting(Status::error(EHOSTDOWN, "the connection to the broker was lost; try again"));
  socket_.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms_));
  backoff_ms_ = std::min(backoff_ms_ * 2, proto::kReconnectMaxMs);
  if (Status s = connect(); !s) std::fprintf(stderr, "roam-agent: %s\n", s.message().c_str());
}

void Agent::on_message(const proto::Message& m) {
  if (const auto* r = std::get_if<proto::Reply>(&m)) {
    if (users_ && users_->on_reply(*r)) return;  // the answer to a user's request
    if (r->code == 0) return;
    std::fprintf(stderr, "roam-agent: broker says: %s\n", r->message.c_str());
    if (r->code == ENOTCONN) send(proto::Register{cfg_.desktop, cfg_.mount_driver});
    return;
  }
  send_all(desktop_->on_message(m));
}

}  // namespace roam::agent
