#include "agent/remote_driver.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <sys/mount.h>
#include <unistd.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/sys/files.h"
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

// One connection to the disk's roamfs, and the thread that relays between
// it and this desktop's /dev/fuse.
class Relay {
 public:
  // Connects, says hello as `desktop`, and returns once roamfs has opened a
  // session for it; ETIMEDOUT when it does not within kRemoteHelloTimeoutMs
  // (roamfs down, or this key not allowed).
  static Result<std::unique_ptr<Relay>> open(const RemoteExport& ex, const DriverContext& c) {
    std::unique_ptr<Relay> r(new Relay);
    ROAM_ASSIGN(r->socket_, proto::connect_dealer(r->ctx_, ex.endpoint, c.keys, ex.server_key));
    try {
      r->socket_.set(zmq::sockopt::sndhwm, 0);  // a dropped request would hang a process here
      r->socket_.set(zmq::sockopt::rcvhwm, 0);
      r->socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(remote::kMaxFuseMessage));
    } catch (const zmq::error_t& e) {
      return Status::error(e.num(), std::string("remote socket: ") + e.what());
    }
    ROAM_TRY(send_meta(r->socket_, {remote::Kind::kHello, c.desktop}, {}));
    ROAM_TRY(r->await_welcome(ex.endpoint));
    ROAM_TRY(r->watch_connection());
    return r;
  }

  // Relays between /dev/fuse (`fuse_fd`, taken) and roamfs until the mount
  // is gone or the Relay is destroyed.
  void start(int fuse_fd) {
    fuse_fd_ = fuse_fd;
    thread_ = std::thread([this] { run(); });
  }

  ~Relay() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    (void)send_meta(socket_, {remote::Kind::kEnd, {}}, {});
    if (fuse_fd_ >= 0) ::close(fuse_fd_);
  }

 private:
  Relay() = default;

  Status await_welcome(const std::string& endpoint) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kRemoteHelloTimeoutMs);
    try {
      while (std::chrono::steady_clock::now() < deadline) {
        if (zmq::poll(&item, 1, std::chrono::milliseconds(100)) == 0) continue;
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) continue;
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
      if (zmq_socket_monitor(socket_.handle(), kMonitor, ZMQ_EVENT_DISCONNECTED) != 0) throw zmq::error_t();
      monitor_ = zmq::socket_t(ctx_, zmq::socket_type::pair);
      monitor_.connect(kMonitor);
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
    if (!stop_.load()) abort_mount();
  }

  void pass_messages() {
    while (!stop_.load()) {
      zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                 {nullptr, fuse_fd_, ZMQ_POLLIN, 0},
                                 {monitor_.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 3, kPollInterval);
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
    }
  }

  // Closes this desktop's end of the FUSE connection, which aborts it: every
  // request waiting for roamfs, and every later one, fails with ENOTCONN
  // (the agent's look for fenced homes then unmounts the home), rather than
  // a process, or the agent's own sync at a detach, waiting for ever.
  void abort_mount() {
    ::close(fuse_fd_);
    fuse_fd_ = -1;
  }

  // Passes requests on; false once the mount is gone (the kernel's end of
  // the connection, ENODEV), after telling roamfs.
  bool from_kernel() {
    for (int i = 0; i < kBurst; ++i) {
      ssize_t n = ::read(fuse_fd_, buf_.data(), buf_.size());
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
      if (n < 0 && errno == ENOENT) continue;  // an interrupted request the kernel took back
      if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) {
        (void)send_meta(socket_, {remote::Kind::kEnd, {}}, {});
        return false;
      }
      fuse_in_header h;
      std::memcpy(&h, buf_.data(), sizeof h);
      Status sent = send_meta(socket_, {remote::Kind::kRequest, comms_.of(h.pid)},
                              std::string_view(buf_.data(), static_cast<size_t>(n)));
      if (!sent) {  // the caller gets the error rather than waiting for ever
        const std::string reply = remote::error_reply(h.unique, sent.err());
        [[maybe_unused]] ssize_t w = ::write(fuse_fd_, reply.data(), reply.size());
      }
    }
    return true;
  }

  // Writes roamfs's replies and notifications to the kernel, each checked
  // first: a malformed one is dropped (the kernel would refuse it anyway).
  void from_roamfs() {
    for (int i = 0; i < kBurst; ++i) {
      std::vector<zmq::message_t> parts;
      try {
        if (!zmq::recv_multipart(socket_, std::back_inserter(parts), zmq::recv_flags::dontwait)) return;
      } catch (const zmq::error_t&) {
        return;
      }
      if (parts.size() != 2) continue;
      auto meta = remote::decode_meta(parts[0].to_string_view());
      if (!meta || meta->kind != remote::Kind::kFuse || !remote::validate_reply(parts[1].to_string_view())) continue;
      // ENOENT: the request was interrupted meanwhile; nothing to do.
      [[maybe_unused]] ssize_t n = ::write(fuse_fd_, parts[1].data(), parts[1].size());
    }
  }

  zmq::context_t ctx_;
  zmq::socket_t socket_;
  zmq::socket_t monitor_;  // ZMQ_EVENT_DISCONNECTED of socket_
  int fuse_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<char> buf_ = std::vector<char>(remote::kMaxFuseMessage);
  Comms comms_;
};

class RemoteDriver final : public MountDriver {
 public:
  explicit RemoteDriver(DriverContext context) : context_(std::move(context)) {}

  Status attach(const std::string& export_path, const std::string& home) override {
    ROAM_ASSIGN(RemoteExport ex, parse_remote_export(export_path));
    if (mounted(home)) {
      // The same export still served: done. A dead mount of it (fenced, its
      // roamfs gone) is made again: the next epoch's roamfs, on the same
      // port with the same key, serves only a new session (a new Hello).
      if (relay_ && export_path == attached_ && verify_fuse_home(home)) return Status::ok();
      ROAM_TRY(detach(home));
    }
    ROAM_TRY(make_dirs(home));
    ROAM_ASSIGN(auto relay, Relay::open(ex, context_));
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno_error("cannot open /dev/fuse");
    const std::string opts = "fd=" + std::to_string(fd) +
                             ",rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other";
    if (::mount("roamfs:remote", home.c_str(), "fuse.roamfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      Status st = errno_error("cannot mount the remote disk at " + home);
      ::close(fd);
      return st;
    }
    relay->start(fd);
    relay_ = std::move(relay);
    attached_ = export_path;
    return verify_fuse_home(home);
  }

  Status detach(const std::string& home) override {
    ROAM_TRY(unmount_home(home));
    relay_.reset();  // the kernel wrote back what it had cached before the unmount returned
    attached_.clear();
    return Status::ok();
  }

  bool mounted(const std::string& home) const override { return home_mounted(home); }

 private:
  DriverContext context_;
  std::unique_ptr<Relay> relay_;
  std::string attached_;  // the export relay_ serves
};

}  // namespace

std::unique_ptr<MountDriver> make_remote_driver(const DriverContext& context) {
  return std::make_unique<RemoteDriver>(context);
}

Result<RemoteExport> parse_remote_export(const std::string& s) {
  const size_t hash = s.rfind('#');
  if (hash == std::string::npos || s.compare(0, 6, "tcp://") != 0)
    return Status::invalid("remote export '" + s + "' is not tcp://ADDR:PORT#KEY");
  ROAM_ASSIGN(std::string key, proto::key_from_hex(s.substr(hash + 1), "the remote export's key"));
  return RemoteExport{s.substr(0, hash), std::move(key)};
}

}  // namespace roam::agent
