#include "fusefs/fuse/remote_server.h"

#include <linux/fuse.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstring>
#include <deque>
#include <utility>
#include <vector>

#include "fusefs/fuse/remote_session.h"
#include "protocol/remote.h"
#include "protocol/transport.h"

namespace roam {

namespace remote = proto::remote;

namespace {

// How long the relay waits in poll before looking at stop_ again.
constexpr auto kPollInterval = std::chrono::milliseconds(500);
// Messages read from one source before the relay looks at the others.
constexpr int kBurst = 64;

uint64_t unique_of(std::string_view request) {
  if (request.size() < sizeof(fuse_in_header)) return 0;
  fuse_in_header h;
  std::memcpy(&h, request.data(), sizeof h);
  return h.unique;
}

}  // namespace

struct RemoteServer::Relay {
  zmq::context_t ctx;
  zmq::socket_t router;
  zmq::socket_t zap;
  std::string peer;  // routing id of the connection the session belongs to
  remote::HandleGuard guard;
  // Requests admitted but not yet taken by the session's socket. The relay
  // never blocks on it: while it waited, libfuse's workers could block on
  // replies the relay no longer reads.
  std::deque<std::string> waiting;
  uint64_t syncs_sent = 0;  // kSyncs sent to the current session's desktop, as sync_desktop counts them
  std::vector<char> buf = std::vector<char>(remote::kMaxFuseMessage);
};

RemoteServer::RemoteServer(Fs& fs, Config cfg) : fs_(fs), cfg_(std::move(cfg)), relay_state_(std::make_unique<Relay>()) {}

Result<std::unique_ptr<RemoteServer>> RemoteServer::start(Fs& fs, Config cfg) {
  std::unique_ptr<RemoteServer> s(new RemoteServer(fs, std::move(cfg)));
  Relay& r = *s->relay_state_;
  ROAM_ASSIGN(r.zap, proto::bind_zap(r.ctx));
  try {
    r.router = zmq::socket_t(r.ctx, zmq::socket_type::router);
    r.router.set(zmq::sockopt::linger, 0);
    r.router.set(zmq::sockopt::curve_server, true);
    const auto& secret = s->cfg_.keys.secret_key;
    r.router.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(secret.data(), secret.size()));
    r.router.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(remote::kMaxFuseMessage));
    r.router.set(zmq::sockopt::sndhwm, 0);  // a dropped reply would hang a process in the desktop
    r.router.set(zmq::sockopt::router_mandatory, true);
    proto::set_heartbeats(r.router, {remote::kHeartbeatIntervalMs, remote::kHeartbeatTimeoutMs});
    r.router.bind(s->cfg_.listen);
  } catch (const zmq::error_t& e) {
    return Status::error(e.num(), "cannot listen on " + s->cfg_.listen + ": " + e.what());
  }
  s->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s->wake_fd_ < 0) return Status::error(errno, "eventfd");
  s->thread_ = std::thread([p = s.get()] { p->relay(); });
  return s;
}

RemoteServer::~RemoteServer() {
  stop_.store(true);
  if (wake_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  set_current(nullptr);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status RemoteServer::allow(const std::string& key_hex, uint64_t epoch) {
  {
    std::lock_guard lock(mu_);
    if (epoch < cfg_.epoch)
      return Status::error(ESTALE, "epoch " + std::to_string(epoch) + " is older than the current " +
                                       std::to_string(cfg_.epoch));
    cfg_.allowed_key = key_hex, cfg_.epoch = epoch;
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  return Status::ok();
}

void RemoteServer::fence() {
  {
    std::lock_guard lock(mu_);
    cfg_.allowed_key.clear();
  }
  // Dropped here, not only on the relay's next turn, and waited for: once
  // fence returns no request of the session is being served, and nothing the
  // relay had not yet passed on will be (the key check runs per message).
  std::shared_ptr<RemoteSession> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(session_, nullptr);
  }
  synced_cv_.notify_all();
  if (old) {
    old->end();
    old->wait_ended();
  }
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

std::shared_ptr<RemoteSession> RemoteServer::current() {
  std::lock_guard lock(mu_);
  return session_;
}

void RemoteServer::set_current(std::shared_ptr<RemoteSession> s) {
  std::shared_ptr<RemoteSession> old;
  {
    std::lock_guard lock(mu_);
    old = std::exchange(session_, std::move(s));
    syncs_done_ = syncs_asked_;  // what the old desktop was asked is moot: its kernel is gone
  }
  synced_cv_.notify_all();
  if (old) old->end();  // the last holder joins its loop, outside mu_
}

void RemoteServer::drop_session(const RemoteSession* which) {
  std::shared_ptr<RemoteSession> old;
  {
    std::lock_guard lock(mu_);
    if (session_.get() == which) old = std::exchange(session_, nullptr);
  }
  synced_cv_.notify_all();
  if (old) old->end();
}

Status RemoteServer::sync_desktop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const RemoteSession* asked_of = session_.get();
  if (!asked_of) return Status::ok();
  const std::string desktop = session_->desktop();
  const uint64_t ticket = ++syncs_asked_;
  lock.unlock();
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);  // the relay sends it
  lock.lock();
  if (synced_cv_.wait_for(lock, timeout, [&] { return syncs_done_ >= ticket || session_.get() != asked_of; }))
    return Status::ok();
  return Status::error(ETIMEDOUT, "remote desktop " + desktop + " did not write back its cached changes within " +
                                      std::to_string(timeout.count() / 1000) +
                                      " s (stopped or cut off?); fence or detach it, or retry");
}

void RemoteServer::with_session(const std::function<void(fuse_session*)>& fn) {
  if (auto s = current()) fn(s->se());
}

bool RemoteServer::is_open(uint64_t ino) {
  auto s = current();
  return s && s->context().open_files.is_open(ino);
}

}  // namespace roam

namespace roam {

bool RemoteServer::allowed(const std::string& key_hex) {
  std::lock_guard lock(mu_);
  return !key_hex.empty() && key_hex == cfg_.allowed_key;
}

void RemoteServer::relay() {
  Relay& r = *relay_state_;
  while (!stop_.load()) {
    std::shared_ptr<RemoteSession> s = current();
    if (s && s->key() != [this] { std::lock_guard lock(mu_); return cfg_.allowed_key; }()) {
      drop_session(s.get());  // allow() gave the disk to another key
      s.reset();
    }
    if (!s) r.waiting.clear();  // a session's requests go to it or nowhere
    const short session_events = static_cast<short>(ZMQ_POLLIN | (r.waiting.empty() ? 0 : ZMQ_POLLOUT));
    zmq::pollitem_t items[] = {{r.router.handle(), 0, ZMQ_POLLIN, 0},
                               {r.zap.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, wake_fd_, ZMQ_POLLIN, 0},
                               {nullptr, s ? s->relay_fd() : -1, session_events, 0}};
    try {
      zmq::poll(items, s ? 4 : 3, kPollInterval);
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) syslog(LOG_ERR, "roamfs: remote relay: %s", e.what());
      continue;
    }
    if (items[2].revents & ZMQ_POLLIN) {
      uint64_t n;
      [[maybe_unused]] auto got = ::read(wake_fd_, &n, sizeof n);
    }
    if (s) send_syncs();
    if (items[1].revents & ZMQ_POLLIN)
      if (Status st = proto::answer_zap(r.zap, [this](const std::string& k) { return allowed(k); }); !st)
        syslog(LOG_ERR, "roamfs: remote: %s", st.message().c_str());
    if (items[0].revents & ZMQ_POLLIN) read_peers();
    if (s && (items[3].revents & (ZMQ_POLLIN | ZMQ_POLLERR))) pass_replies(*s);
    if (s && (items[3].revents & ZMQ_POLLOUT)) pass_requests(*s);
  }
}

// Reads what the desktops sent, a burst at a time. A message that is not
// [routing id, meta, payload] is dropped unread.
void RemoteServer::read_peers() {
  Relay& r = *relay_state_;
  for (int i = 0; i < kBurst; ++i) {
    std::vector<zmq::message_t> parts;
    try {
      if (!zmq::recv_multipart(r.router, std::back_inserter(parts), zmq::recv_flags::dontwait)) return;
    } catch (const zmq::error_t& e) {
      syslog(LOG_ERR, "roamfs: remote: receiving: %s", e.what());
      return;
    }
    if (parts.size() != 3) continue;
    const char* user = parts[1].gets("User-Id");
    on_message(parts[0].to_string(), user ? user : "", parts[1].to_string_view(), parts[2].to_string_view());
  }
}

void RemoteServer::on_message(const std::string& routing_id, const std::string& user_id, std::string_view meta_frame,
                              std::string_view payload) {
  auto meta = remote::decode_meta(meta_frame);
  if (!meta) return;
  if (!allowed(user_id)) {
    // A fenced desktop's requests fail, and nothing of them goes further.
    if (meta->kind == remote::Kind::kRequest) answer(routing_id, payload, ENOTCONN);
    return;
  }
  switch (meta->kind) {
    case remote::Kind::kHello:
      return open_session(routing_id, user_id, meta->text);
    case remote::Kind::kEnd:
      if (routing_id == relay_state_->peer) drop_session(current().get());
      return;
    case remote::Kind::kRequest:
      return on_request(routing_id, meta->text, payload);
    case remote::Kind::kSynced:
      if (routing_id == relay_state_->peer) synced();
      return;
    default:
      return;
  }
}

// A new mount in the desktop: the old session (if any) goes, a new one
// answers the kernel's INIT that follows the Welcome.
void RemoteServer::open_session(const std::string& routing_id, const std::string& key, const std::string& desktop) {
  set_current(nullptr);
  auto s = std::make_shared<RemoteSession>(fs_, cfg_.options, cfg_.history, key, desktop);
  if (Status st = s->start(); !st) {
    syslog(LOG_ERR, "roamfs: remote desktop %s: %s", desktop.c_str(), st.message().c_str());
    return;
  }
  relay_state_->peer = routing_id;
  relay_state_->guard = {};
  relay_state_->waiting.clear();
  {
    // Before the swap: a sync asked after this line is sent to the new
    // desktop (if the old one was current then, its waiter is released by
    // the swap and the new desktop's answer to it is counted for nobody).
    std::lock_guard lock(mu_);
    relay_state_->syncs_sent = syncs_asked_;
  }
  set_current(std::move(s));
  syslog(LOG_INFO, "roamfs: serving remote desktop %s", desktop.c_str());
  try {
    std::string meta = remote::encode_meta({remote::Kind::kWelcome, {}});
    std::vector<zmq::const_buffer> parts{zmq::buffer(routing_id), zmq::buffer(meta), zmq::const_buffer()};
    (void)zmq::send_multipart(relay_state_->router, parts);
  } catch (const zmq::error_t& e) {
    syslog(LOG_WARNING, "roamfs: remote: welcome not sent: %s", e.what());
  }
}

void RemoteServer::on_request(const std::string& routing_id, const std::string& comm, std::string_view request) {
  auto s = current();
  if (!s || routing_id != relay_state_->peer) return answer(routing_id, request, ENOTCONN);
  if (Status st = remote::validate_request(request, s->context().device_io.setxattr_ext()); !st)
    return answer(routing_id, request, st.err());
  if (int err = relay_state_->guard.admit(request); err != 0) {
    if (err != EPROTO) answer(routing_id, request, err);  // EPROTO: its id is in flight; an answer would go there
    return;
  }
  fuse_in_header h;
  std::memcpy(&h, request.data(), sizeof h);
  s->context().comms.tell(h.pid, comm);
  relay_state_->waiting.emplace_back(request);
  pass_requests(*s);
}

void RemoteServer::pass_requests(RemoteSession& s) {
  Relay& r = *relay_state_;
  while (!r.waiting.empty()) {
    const std::string& request = r.waiting.front();
    if (::send(s.relay_fd(), request.data(), request.size(), MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
      r.waiting.pop_front();
      continue;
    }
    if (errno == EAGAIN || errno == EINTR) return;  // the relay polls for room
    syslog(LOG_WARNING, "roamfs: remote: requests not passed on: %s", std::strerror(errno));
    for (const std::string& lost : r.waiting) {
      r.guard.replied(remote::error_reply(unique_of(lost), EIO));
      answer(r.peer, lost, EIO);
    }
    r.waiting.clear();
  }
}

// Replies and notifications libfuse wrote for the session, to its desktop.
void RemoteServer::pass_replies(RemoteSession& s) {
  Relay& r = *relay_state_;
  for (int i = 0; i < kBurst; ++i) {
    ssize_t n = ::recv(s.relay_fd(), r.buf.data(), r.buf.size(), MSG_DONTWAIT);
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) drop_session(&s);  // the session's loop is gone
      return;
    }
    std::string_view message(r.buf.data(), static_cast<size_t>(n));
    r.guard.replied(message);
    send_fuse(r.peer, message);
  }
}

void RemoteServer::send_syncs() {
  Relay& r = *relay_state_;
  uint64_t asked;
  {
    std::lock_guard lock(mu_);
    asked = syncs_asked_;
  }
  for (; r.syncs_sent < asked; ++r.syncs_sent) {
    try {
      std::string meta = remote::encode_meta({remote::Kind::kSync, {}});
      std::vector<zmq::const_buffer> parts{zmq::buffer(r.peer), zmq::buffer(meta), zmq::const_buffer()};
      (void)zmq::send_multipart(r.router, parts);
    } catch (const zmq::error_t& e) {
      // The desktop's connection is gone: nobody will answer, and the
      // waiter ends with ETIMEDOUT (or sooner, if the session is dropped).
      syslog(LOG_WARNING, "roamfs: remote: sync not asked: %s", e.what());
    }
  }
}

void RemoteServer::synced() {
  {
    std::lock_guard lock(mu_);
    if (syncs_done_ < syncs_asked_) ++syncs_done_;  // a desktop cannot answer more than it was asked
  }
  synced_cv_.notify_all();
}

void RemoteServer::answer(const std::string& routing_id, std::string_view request, int err) {
  const uint64_t unique = unique_of(request);
  if (unique != 0) send_fuse(routing_id, remote::error_reply(unique, err));  // id 0 would be a notification
}

void RemoteServer::send_fuse(const std::string& routing_id, std::string_view message) {
  try {
    std::string meta = remote::encode_meta({remote::Kind::kFuse, {}});
    std::vector<zmq::const_buffer> parts{zmq::buffer(routing_id), zmq::buffer(meta),
                                         zmq::const_buffer(message.data(), message.size())};
    (void)zmq::send_multipart(relay_state_->router, parts);
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the desktop disconnected; its kernel has nobody to wait for.
    if (e.num() != EHOSTUNREACH) syslog(LOG_WARNING, "roamfs: remote: reply not sent: %s", e.what());
  }
}

}  // namespace roam
