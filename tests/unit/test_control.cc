// fusefs/control/protocol.h: the roamctl <-> roamfs messages. Round trips, and
// garbage (random, truncated, trailing bytes) decoded into an error value,
// never a crash or an over-read (ExactBuffer lets ASan see one).
#include <grp.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <random>
#include <thread>

#include "fusefs/control/protocol.h"
#include "tests/unit/helpers.h"

using namespace roam;
using namespace roam::control;
using roam::testing::ExactBuffer;
using roam::testing::must;

namespace {

std::vector<Request> samples() {
  return {
      Request{RestoreCall{"/docs/a b", 1764238500123456789LL, std::nullopt, std::nullopt, false}},
      Request{RestoreCall{"/", std::nullopt, 42, std::string("/copy"), true}},
      Request{RestoreCall{"/t", -5, std::nullopt, std::nullopt, false, Identity{1000, 100, {27, 4000000000u}, 9, "roam"}}},
      Request{HistoryCall{"/thesis.odt", std::nullopt}},
      Request{HistoryCall{"/a", Identity{1000, 1000, {}, 1, ""}}},
      Request{LogCall{}},
      Request{LogCall{std::string("/docs"), -3, std::string("ransom"), 100, Identity{1001, 1001, {5}, 2, "sh"}}},
      Request{UndoRestoreCall{Identity{1000, 1000, {}, 3, "roam"}}},
      Request{UndoCall{std::string("ransom"), std::nullopt, std::nullopt, false, std::nullopt}},
      Request{UndoCall{std::nullopt, 4242u, -7, true, Identity{1000, 1000, {}, 3, "roam"}}},
      Request{GcCall{}},
      Request{RetentionCall{}},
      Request{RetentionCall{30LL * 86400 * 1000000000LL, 20ull << 30, std::nullopt}},
      Request{RetentionCall{std::nullopt, std::nullopt, 3600LL * 1000000000LL}},
      Request{QuotaCall{}},
      Request{QuotaCall{10ull << 30}},
      Request{RemoteAllowCall{std::string(64, 'a'), 7}},
      Request{RemoteFenceCall{}},
  };
}

Reply sample_reply() {
  Reply r;
  r.moment = "2026-11-27T10:15:00.000000000Z";
  r.seq = 1234;
  r.changes = {{RestoreChange::Kind::kBack, "/a", ""}, {RestoreChange::Kind::kChanged, "/b", "content, mode"},
               {RestoreChange::Kind::kGone, "/c", ""}};
  r.figures = {{"bytes_freed", 1 << 30}, {"negative", -5}};
  return r;
}

}  // namespace

TEST_CASE("control requests and replies survive a round trip", "[control]") {
  for (const Request& req : samples()) {
    ExactBuffer buf(encode(req));
    CHECK(must(decode_request(buf.view())) == req);
  }
  const Reply r = sample_reply();
  ExactBuffer buf(encode(r));
  const Reply d = must(decode_reply(buf.view()));
  CHECK(d.moment == r.moment);
  CHECK(d.seq == r.seq);
  REQUIRE(d.changes.size() == 3);
  CHECK(d.changes[1].what == "content, mode");
  CHECK(d.figures == r.figures);
}

TEST_CASE("a reply's table rows survive a round trip", "[control]") {
  Reply r;
  r.rows = {{"1", "2026-12-04T23:00:00.000000000Z", "create", "/f", "sh[7] uid 1000", "12"}, {}, {"x"}};
  ExactBuffer buf(encode(r));
  CHECK(must(decode_reply(buf.view())).rows == r.rows);
}

TEST_CASE("truncated or extended control messages are refused", "[control]") {
  for (const Request& req : samples()) {
    const std::string full = encode(req);
    for (size_t n = 0; n < full.size(); ++n) {
      ExactBuffer cut(full.substr(0, n));
      CHECK_ERR(decode_request(cut.view()), EINVAL);
    }
    ExactBuffer longer(full + "x");
    CHECK_ERR(decode_request(longer.view()), EINVAL);
  }
  const std::string reply = encode(sample_reply());
  for (size_t n = 0; n < reply.size(); ++n) {
    ExactBuffer cut(reply.substr(0, n));
    CHECK_FALSE(decode_reply(cut.view()).is_ok());
  }
}

TEST_CASE("random bytes never crash the control decoders", "[control]") {
  const uint64_t seed = roam::testing::env_seed("ROAMDISK_SEED");
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const auto good = samples();
  for (int i = 0; i < 20000; ++i) {
    std::string bytes;
    if (i % 2) {  // a valid message with a few bytes changed: reaches deep into the decoder
      bytes = encode(good[rng() % good.size()]);
      for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    } else {
      bytes = roam::testing::random_bytes(rng, rng() % 64);
    }
    ExactBuffer buf(bytes);
    auto req = decode_request(buf.view());
    if (!req) CHECK(req.status().err() == EINVAL);
    (void)decode_reply(buf.view());
  }
}

TEST_CASE("a refusal sent before the request was read still reaches the caller", "[control]") {
  // roamfs answers a caller it refuses without reading its request, then
  // closes; a request larger than the socket buffer then fails to send
  // (EPIPE), and the caller must still report the refusal, not the pipe.
  roam::testing::TempDir t;
  const std::string dir = t.sub("control");
  const int listener = must(listen_on(dir));
  std::thread server([listener] {
    pollfd p{listener, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    const int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(conn >= 0);
    Reply refusal;
    refusal.err = EACCES;
    refusal.message = "refused before reading";
    REQUIRE_OK(send_frame(conn, encode(refusal)));
    ::close(conn);
  });
  RestoreCall big{"/" + std::string(8u << 20, 'x'), 1, std::nullopt, std::nullopt, false};
  Reply reply = must(call(dir, ::geteuid(), Request{big}));
  server.join();
  ::close(listener);
  CHECK(reply.err == EACCES);
  CHECK(reply.message == "refused before reading");
}

// ------------------------------------------------ who may hold the socket

namespace {

constexpr uid_t kNobody = 65534;

// Runs `fn` in a child process as uid and gid nobody; its exit status
// (fn's result), or -1 when it did not exit normally.
int as_nobody(const std::function<int()>& fn) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(100);
    ::_exit(fn());
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// Binds and listens on a Unix socket at `path`; 0 on success, else errno.
int bind_path(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  const int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? ::listen(fd, 1) : -1;
  const int err = rc == 0 ? 0 : errno;
  ::close(fd);
  return err;
}

// Serves one gc request on `listener` with an empty reply, in a thread.
std::thread serve_one(int listener) {
  return std::thread([listener] {
    pollfd p{listener, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10000) == 1);
    const int conn = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(conn >= 0);
    REQUIRE(recv_frame(conn, kMaxRequest).is_ok());
    REQUIRE_OK(send_frame(conn, encode(Reply{})));
    ::close(conn);
  });
}

}  // namespace

TEST_CASE("a squatter as nobody can neither bind a store's control socket nor stop roamfs serving it",
          "[control]") {
  REQUIRE(::geteuid() == 0);  // the unit suite runs as root (a squatter is made with setuid)
  roam::testing::TempDir t;
  REQUIRE(::chmod(t.path().c_str(), 0755) == 0);
  const std::string store = t.sub("store");
  REQUIRE(::mkdir(store.c_str(), 0755) == 0);  // even a store readable by all
  const std::string dir = socket_dir(store);
  // Every address roamfs will use, tried before roamfs starts.
  const int squatted = as_nobody([&] {
    if (::mkdir(dir.c_str(), 0777) == 0) return 1;
    if (bind_path(dir + "/socket") == 0) return 2;
    return 0;
  });
  CHECK(squatted == 0);
  const int listener = must(listen_on(dir));
  std::thread server = serve_one(listener);
  auto reply = call(dir, 0, Request{GcCall{}});
  server.join();
  ::close(listener);
  REQUIRE_OK(reply.status());
  struct stat st {};
  REQUIRE(::stat(dir.c_str(), &st) == 0);
  CHECK(st.st_uid == 0);
  CHECK((st.st_mode & 0777) == 0700);
}

TEST_CASE("a control directory another user made is refused, not used", "[control]") {
  // A store directory open to all (a mistake) lets nobody make the
  // directory first: roamfs then says so and serves nothing through it.
  roam::testing::TempDir t;
  REQUIRE(::chmod(t.path().c_str(), 0755) == 0);
  const std::string store = t.sub("store");
  REQUIRE(::mkdir(store.c_str(), 0777) == 0);
  REQUIRE(::chmod(store.c_str(), 0777) == 0);
  const std::string dir = socket_dir(store);
  REQUIRE(as_nobody([&] { return ::mkdir(dir.c_str(), 0700) == 0 ? 0 : 1; }) == 0);
  auto listener = listen_on(dir);
  REQUIRE_FALSE(listener.is_ok());
  CHECK(listener.status().err() == EPERM);
  CHECK_THAT(listener.status().message(), Catch::Contains("belongs to uid 65534"));
}

TEST_CASE("roamctl talks only to a control socket served by root or the disk's owner", "[control]") {
  roam::testing::TempDir t;
  REQUIRE(::chmod(t.path().c_str(), 0755) == 0);
  const std::string dir = t.sub("control");
  REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
  REQUIRE(::chown(dir.c_str(), kNobody, kNobody) == 0);
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  // nobody serves two connections and exits with the number of requests it read.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) ::_exit(100);
    auto listener = listen_on(dir);
    if (!listener.is_ok()) ::_exit(101);
    (void)!::write(ready[1], "x", 1);
    int requests = 0;
    for (int i = 0; i < 2; ++i) {
      pollfd p{*listener, POLLIN, 0};
      if (::poll(&p, 1, 10000) != 1) ::_exit(102);
      const int conn = ::accept4(*listener, nullptr, nullptr, SOCK_CLOEXEC);
      timeval tv{2, 0};
      ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (recv_frame(conn, kMaxRequest).is_ok()) {
        ++requests;
        (void)send_frame(conn, encode(Reply{}));
      }
      ::close(conn);
    }
    ::_exit(requests);
  }
  char c;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  auto refused = call(dir, 0, Request{GcCall{}});
  REQUIRE_FALSE(refused.is_ok());
  CHECK(refused.status().err() == EACCES);
  CHECK_THAT(refused.status().message(), Catch::Contains("served by uid 65534"));
  REQUIRE_OK(call(dir, kNobody, Request{GcCall{}}).status());  // nobody's own disk: fine
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  ::close(ready[0]);
  ::close(ready[1]);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 1);  // the refused call's request never reached it
}
