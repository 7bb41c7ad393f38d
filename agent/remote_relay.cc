#include "agent/remote_relay.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "protocol/remote.h"
#include "protocol/transport.h"

namespace roam::agent {

namespace remote = proto::remote;

namespace {

// How long the relay waits in poll before looking at its stop flag.
constexpr auto kPollInterval = std::chrono::milliseconds(200);
// Messages taken from one side before the relay looks at the other.
constexpr int kBurst = 64;
// Process names are read again after this long, and forgotten all at once
// past this many pids (as roamfs's own CommCache, fusefs/fuse/ops.h).
constexpr auto kCommTtl = std::chrono::seconds(1);
constexpr size_t kMaxCachedPids = 4096;

// Process names by pid, as this desktop's /proc shows them.
class Comms {
 public:
  const std::string& of(uint32_t pid) {
    const auto now = std::chrono::steady_clock::now();
    auto it = names_.find(pid);
    if (it != names_.end() && now - it->second.read_at < kCommTtl) return it->second.comm;
    if (names_.size() > kMaxCachedPids) names_.clear();
    std::string comm;
    if (pid != 0) {
      std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
      std::getline(in, comm);
    }
    auto& e = names_[pid];
    e = {std::move(comm), now};
    return e.comm;
  }

 private:
  struct Entry {
    std::string comm;
    std::chrono::steady_clock::time_point read_at;
  };
  std::unordered_map<uint32_t, Entry> names_;
};

Status send_meta(zmq::socket_t& s, const remote::Meta& meta, std::string_view payload) {
  try {
    std::string m = remote::encode_meta(meta);
    std::vector<zmq::const_buffer> parts{zmq::buffer(m), zmq::const_buffer(payload.data(), payload.size())};
    // Never blocks: the high-water marks are unlimited, so EAGAIN means no
    // connection to roamfs at all (a DEALER would wait for one).
    if (!zmq::send_multipart(s, parts, zmq::send_flags::dontwait))
      return Status::error(ENOTCONN, "not connected to roamfs");
    return Status::ok();
  } catch (const zmq::error_t& e) {
    return Status::error(e.num(), std::string("sending to roamfs: ") + e.what());
  }
}

// The kernel side: writes notifications to /dev/fuse and syncs the home, in
// the order roamfs sent them, on a thread of its own (see remote_relay.h).
// Each finished sync adds one to the eventfd `synced_fd`, which the relay
// thread polls to answer kSynced.
class KernelSide {
 public:
  KernelSide(int fuse_fd, std::string home, int synced_fd)
      : fuse_fd_(fuse_fd), home_(std::move(home)), synced_fd_(synced_fd), thread_([this] { run(); }) {}
  ~KernelSide() {
    stop();
    join();
  }
  KernelSide(const KernelSide&) = delete;
  KernelSide& operator=(const KernelSide&) = delete;

  void notify(std::string message) { push(Job{std::move(message)}); }
  void sync() { push(Job{std::nullopt}); }
  // Takes no more jobs; the thread ends after the one it is doing, which may
  // wait for the relay thread to answer the kernel (see Relay::State::drain).
  void stop() {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  bool finished() const { return finished_.load(); }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Job {
    std::optional<std::string> notification;  // nullopt: a sync
  };

  void push(Job job) {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    jobs_.push_back(std::move(job));
    cv_.notify_one();
  }

  void run() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
        if (stopping_) break;  // the mount is going: what is left has nobody to serve
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      if (job.notification) {
        // ENOENT: the kernel no longer knows the inode; nothing to do.
        [[maybe_unused]] ssize_t n = ::write(fuse_fd_, job.notification->data(), job.notification->size());
      } else {
        sync_home();
      }
    }
    finished_.store(true);
  }

  // Whatever fails, roamfs hears that the sync is over: it waits for
  // nothing that could come later.
  void sync_home() {
    int fd = ::open(home_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
      if (::syncfs(fd) != 0) std::fprintf(stderr, "roam-agent: syncfs %s: %s\n", home_.c_str(), std::strerror(errno));
      ::close(fd);
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(synced_fd_, &one, sizeof one);
  }

  const int fuse_fd_;
  const std::string home_;
  const int synced_fd_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::atomic<bool> finished_{false};
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace

struct Relay::State {
  zmq::context_t ctx;
  zmq::socket_t socket;
  zmq::socket_t monitor;  // ZMQ_EVENT_DISCONNECTED of socket
  int fuse_fd = -1;
  int synced_fd = -1;  // eventfd: syncs the kernel side finished
  std::string home;
  std::atomic<bool> stop{false};
  std::unique_ptr<KernelSide> kernel;
  std::thread thread;
  std::vector<char> buf = std::vector<char>(remote::kMaxFuseMessage);
  Comms comms;

  Status await_welcome(const std::string& endpoint) {
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRemoteHelloTimeoutMs);
    try {
      while (std::chrono::steady_clock::now() < deadline) {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
        if (parts.size() != 2) continue;
        auto meta = remote::decode_meta(parts[0].to_string_view());
        if (meta && meta->kind == remote::Kind::kWelcome) return Status::ok();
      }
    } catch (const zmq::error_t& e) {
      return Status::error(e.num(), "waiting for roamfs at " + endpoint + ": " + e.what());
    }
    return Status::error(ETIMEDOUT, "roamfs at " + endpoint + " opened no session for this desktop (down, or the "
                                    "disk is not attached here)");
  }

  // The session lives as long as its connection: roamfs serves a new
  // connection only after a Hello, which only a new mount sends. So once the
  // connection drops (roamfs ended: its epoch was fenced, or it crashed),
  // the requests in flight will never be answered; watch for that.
  Status watch_connection() {
    static constexpr char kMonitor[] = "inproc://roam-relay-monitor";
    try {
      if (zmq_socket_monitor(socket.handle(), kMonitor, ZMQ_EVENT_DISCONNECTED) != 0) throw zmq::error_t();
      monitor = zmq::socket_t(ctx, zmq::socket_type::pair);
      monitor.connect(kMonitor);
    } catch (const zmq::error_t& e) {
      return Status::error(e.num(), std::string("watching the connection to roamfs: ") + e.what());
    }
    return Status::ok();
  }

  // Relays until the Relay is destroyed; when it stops for any other reason
  // (the mount gone, the connection lost, a poll that fails), nobody would
  // answer the kernel again, so the mount is aborted.
  void run() {
    pass_messages();
    drain();
    if (!stop.load()) abort_mount();
  }

  void pass_messages() {
    while (!stop.load()) {
      zmq::pollitem_t items[] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, fuse_fd, ZMQ_POLLIN, 0},
                                 {monitor.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, synced_fd, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 4, kPollInterval);
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        std::fprintf(stderr, "roam-agent: relay: %s\n", e.what());
        return;
      }
      if (items[0].revents & ZMQ_POLLIN) from_roamfs();
      if ((items[1].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) && !from_kernel()) return;
      if (items[2].revents & ZMQ_POLLIN) {
        std::fprintf(stderr, "roam-agent: lost the connection to the disk's roamfs; its mount is dead\n");
        return;
      }
      if (items[3].revents & ZMQ_POLLIN) tell_synced();
    }
  }

  // Stops the kernel side. A notification or sync it is doing may wait for
  // requests of the kernel's (the write-back of dirty pages) that nobody
  // will relay any more: they are answered ENOTCONN until it has ended.
  void drain() {
    kernel->stop();
    while (!kernel->finished()) {
      pollfd p{fuse_fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      ssize_t n = ::read(fuse_fd, buf.data(), buf.size());
      if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) {
        if (n < 0 && errno == ENODEV) std::this_thread::sleep_for(std::chrono::milliseconds(10));  // unmounted
        continue;
      }
      fuse_in_header h;
      std::memcpy(&h, buf.data(), sizeof h);
      const std::string reply = remote::error_reply(h.unique, ENOTCONN);
      [[maybe_unused]] ssize_t w = ::write(fuse_fd, reply.data(), reply.size());
    }
    kernel->join();
  }

  // Closes this desktop's end of the FUSE connection, which aborts it: every
  // request waiting for roamfs, and every later one, fails with ENOTCONN
  // (the agent's look for fenced homes then unmounts the home), rather than
  // a process, or the agent's own sync at a detach, waiting for ever.
  void abort_mount() {
    ::close(fuse_fd);
    fuse_fd = -1;
  }

  // Passes requests on; false once the mount is gone (the kernel's end of
  // the connection, ENODEV), after telling roamfs.
  bool from_kernel() {
    for (int i = 0; i < kBurst; ++i) {
      ssize_t n = ::read(fuse_fd, buf.data(), buf.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
      if (n < 0 && errno == ENOENT) continue;  // an interrupted request the kernel took back
      if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) {
        (void)send_meta(socket, {remote::Kind::kEnd, {}}, {});
        return false;
      }
      fuse_in_header h;
      std::memcpy(&h, buf.data(), sizeof h);
      Status sent = send_meta(socket, {remote::Kind::kRequest, comms.of(h.pid)},
                              std::string_view(buf.data(), static_cast<size_t>(n)));
      if (!sent) {  // the caller gets the error rather than waiting for ever
        const std::string reply = remote::error_reply(h.unique, sent.err());
        [[maybe_unused]] ssize_t w = ::write(fuse_fd, reply.data(), reply.size());
      }
    }
    return true;
  }

  // roamfs's replies go to the kernel at once, each checked first (a
  // malformed one is dropped: the kernel would refuse it anyway);
  // notifications and syncs go to the kernel side.
  void from_roamfs() {
    for (int i = 0; i < kBurst; ++i) {
      std::vector<zmq::message_t> parts;
      try {
        if (!zmq::recv_multipart(socket, std::back_inserter(parts), zmq::recv_flags::dontwait)) return;
      } catch (const zmq::error_t&) {
        return;
      }
      if (parts.size() != 2) continue;
      auto meta = remote::decode_meta(parts[0].to_string_view());
      if (!meta) continue;
      if (meta->kind == remote::Kind::kSync) {
        kernel->sync();
        continue;
      }
      const std::string_view message = parts[1].to_string_view();
      if (meta->kind != remote::Kind::kFuse || !remote::validate_reply(message)) continue;
      fuse_out_header out;
      std::memcpy(&out, message.data(), sizeof out);
      if (out.unique == 0) {
        kernel->notify(std::string(message));
        continue;
      }
      // ENOENT: the request was interrupted meanwhile; nothing to do.
      [[maybe_unused]] ssize_t n = ::write(fuse_fd, message.data(), message.size());
    }
  }

  void tell_synced() {
    uint64_t done = 0;
    if (::read(synced_fd, &done, sizeof done) != static_cast<ssize_t>(sizeof done)) return;
    for (uint64_t i = 0; i < done; ++i) (void)send_meta(socket, {remote::Kind::kSynced, {}}, {});
  }
};

Relay::Relay() : state_(std::make_unique<State>()) {}

Result<std::unique_ptr<Relay>> Relay::open(const RemoteExport& ex, const DriverContext& c) {
  std::unique_ptr<Relay> r(new Relay);
  State& s = *r->state_;
  ROAM_ASSIGN(s.socket, proto::connect_dealer(s.ctx, ex.endpoint, c.keys, ex.server_key,
                                              {remote::kHeartbeatIntervalMs, remote::kHeartbeatTimeoutMs}));
  try {
    s.socket.set(zmq::sockopt::sndhwm, 0);  // a dropped request would hang a process here
    s.socket.set(zmq::sockopt::rcvhwm, 0);
    s.socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(remote::kMaxFuseMessage));
  } catch (const zmq::error_t& e) {
    return Status::error(e.num(), std::string("remote socket: ") + e.what());
  }
  s.synced_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (s.synced_fd < 0) return Status::error(errno, std::string("eventfd: ") + std::strerror(errno));
  ROAM_TRY(send_meta(s.socket, {remote::Kind::kHello, c.desktop}, {}));
  ROAM_TRY(s.await_welcome(ex.endpoint));
  ROAM_TRY(s.watch_connection());
  return r;
}

void Relay::start(int fuse_fd, std::string home) {
  State& s = *state_;
  s.fuse_fd = fuse_fd;
  s.home = std::move(home);
  s.kernel = std::make_unique<KernelSide>(s.fuse_fd, s.home, s.synced_fd);
  s.thread = std::thread([&s] { s.run(); });
}

Relay::~Relay() {
  State& s = *state_;
  s.stop.store(true);
  if (s.thread.joinable()) s.thread.join();  // drains and joins the kernel side
  (void)send_meta(s.socket, {remote::Kind::kEnd, {}}, {});
  if (s.fuse_fd >= 0) ::close(s.fuse_fd);
  if (s.synced_fd >= 0) ::close(s.synced_fd);
}

}  // namespace roam::agent
