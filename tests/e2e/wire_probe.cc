// wire-probe ENDPOINT BROKER_PUBLIC_HEX OPERATOR_KEY_FILE [SEED]
//
// Talks to a running roam-broker the way a hostile or broken client would and
// exits non-zero if the broker misbehaves:
//   - a client without CURVE gets no answer at all;
//   - random, truncated, mutated and oversized messages from an authenticated
//     client each get an EPROTO error reply;
//   - afterwards the broker still answers a valid request.
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "protocol/transport.h"

using namespace roam;

namespace {

int failures = 0;

void expect(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAIL", what.c_str());
  if (!ok) ++failures;
}

// Sends raw frames and waits for one Reply (nullopt on timeout).
std::optional<proto::Reply> exchange(zmq::socket_t& s, const std::vector<std::string>& frames, int timeout_ms) {
  std::vector<zmq::const_buffer> parts;
  for (const auto& f : frames) parts.emplace_back(f.data(), f.size());
  if (parts.empty()) parts.emplace_back(nullptr, 0);  // ZeroMQ cannot send zero frames
  (void)zmq::send_multipart(s, parts);
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(timeout_ms)) <= 0) return std::nullopt;
  auto got = proto::receive(s);
  if (!got || !*got || !**got) return std::nullopt;
  if (auto* r = std::get_if<proto::Reply>(&(**got).value())) return *r;
  return std::nullopt;
}

std::vector<std::string> hostile(std::mt19937_64& rng, int round) {
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto frames = proto::encode(proto::SwitchRequest{0, "alice", "B", true});
  switch (round % 5) {
    case 0: frames.resize(1 + pick(frames.size() - 1)); break;            // truncated
    case 1: frames[1] = std::string(1, static_cast<char>(19 + pick(200))); break;  // unknown type
    case 2: frames[3] = "../../etc/" + std::to_string(rng()); break;      // bad name
    case 3: frames.assign(1 + pick(5), std::string(pick(30), static_cast<char>(rng()))); break;  // garbage
    default: frames.push_back(std::string(pick(100), 'x'));               // extra field
  }
  if (frames[0] == proto::kMagic && frames.size() > 1 && frames[1].size() == 1 && frames[1][0] == 8 &&
      frames.size() == 6)
    frames[0] = "ROAM0";  // never let a mutation become a valid switch
  return frames;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: wire-probe ENDPOINT BROKER_PUBLIC_HEX KEY_FILE [SEED|-] [AGENT_DESKTOP]\n"
                         "  KEY_FILE: an operator's key, or with AGENT_DESKTOP the agent key of that desktop\n");
    return 2;
  }
  // With an agent key (run from inside a desktop): its requests are refused,
  // but refused with an answer, and the hostile messages are answered alike.
  const bool agent = argc > 5;
  const std::string endpoint = argv[1];
  auto server = proto::key_from_hex(argv[2], "broker key");
  auto keys = proto::read_key_file(argv[3]);
  if (!server || !keys) {
    std::fprintf(stderr, "wire-probe: bad keys\n");
    return 2;
  }
  const uint64_t seed =
      argc > 4 && std::string(argv[4]) != "-" ? std::strtoull(argv[4], nullptr, 10) : std::random_device{}();
  std::printf("seed %llu\n", static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  zmq::context_t ctx;
  try {
    zmq::socket_t plain(ctx, zmq::socket_type::dealer);
    plain.set(zmq::sockopt::linger, 0);
    plain.connect(endpoint);
    expect(!exchange(plain, proto::encode(proto::StatusRequest{1}), 1500),
           "a client without CURVE gets no answer");

    auto s = proto::connect_dealer(ctx, endpoint, *keys, *server);
    if (!s) return 2;
    int answered = 0;
    const int rounds = 300;
    for (int i = 0; i < rounds; ++i) {
      auto r = exchange(*s, hostile(rng, i), 5000);
      if (r && r->code == EPROTO && r->request_id == 0) ++answered;
      else std::printf("  round %d: %s\n", i, r ? r->message.c_str() : "no reply");
    }
    expect(answered == rounds, std::to_string(answered) + "/" + std::to_string(rounds) +
                                   " malformed messages got an EPROTO reply");
    // 2 MiB in three frames, each under the 1 MiB frame limit: the whole
    // message is over the limit.
    auto frames = proto::encode(proto::Reply{7, 0, "ok", {}});
    for (int i = 0; i < 3; ++i) frames.push_back(std::string(700 << 10, 'x'));
    auto big = exchange(*s, frames, 5000);
    expect(big && big->code == EPROTO && big->message.find("larger than") != std::string::npos,
           "a 2 MiB message of three 700 KiB frames gets an EPROTO reply");
    // One frame over 1 MiB: ZeroMQ drops the connection before buffering it.
    {
      auto oversized = proto::connect_dealer(ctx, endpoint, *keys, *server);
      if (!oversized) return 2;
      auto one = proto::encode(proto::Damage{"x"});
      one[2] = std::string((1 << 20) + 1, 'x');
      expect(!exchange(*oversized, one, 1500), "a frame over 1 MiB gets no answer (the connection is dropped)");
    }
    const std::string other = agent && std::string(argv[5]) == "A" ? "B" : "A";
    auto agent_only = exchange(*s, proto::encode(proto::Register{other}), 5000);
    expect(agent_only && agent_only->code == EPERM, "this key cannot speak for desktop " + other + "'s agent");
    auto fine = exchange(*s, proto::encode(proto::StatusRequest{42}), 5000);
    if (agent)
      expect(fine && fine->code == EPERM && fine->request_id == 42, "the broker still answers (an agent key: EPERM)");
    else
      expect(fine && fine->code == 0 && fine->request_id == 42, "the broker still serves a valid request");
  } catch (const zmq::error_t& e) {
    std::printf("FAIL: ZeroMQ error %s\n", e.what());
    return 1;
  }
  return failures == 0 ? 0 : 1;
}
