// fusefs/control/protocol.h: the roamctl <-> roamfs messages. Round trips, and
// garbage (random, truncated, trailing bytes) decoded into an error value,
// never a crash or an over-read (ExactBuffer lets ASan see one).
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
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
      Request{GcCall{}},
      Request{RetentionCall{}},
      Request{RetentionCall{30LL * 86400 * 1000000000LL, 20ull << 30}},
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
  const std::string name = "roamdisk-unit-" + std::to_string(::getpid());
  const int listener = must(listen_on(name));
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
  Reply reply = must(call(name, Request{big}));
  server.join();
  ::close(listener);
  CHECK(reply.err == EACCES);
  CHECK(reply.message == "refused before reading");
}
