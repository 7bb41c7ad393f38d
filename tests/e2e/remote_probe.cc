// remote-probe ENDPOINT#SERVERKEY KEYFILE: a hostile desktop with the allowed
// key (docs/remote.md). It opens a session as the remote driver would, then
// sends roamfs random, truncated and mutated FUSE frames and requests naming
// file handles it never opened, and checks after each batch that a valid
// request is still answered; last, a frame over the size bound, after which
// a new connection must still get a session. Exit 0 when roamfs stood it all.
//
// remote-probe --sync answer|ignore ENDPOINT#SERVERKEY KEYFILE: a desktop
// whose kernel caches writes. It opens a session, prints "session open",
// and waits up to 30 s for roamfs to ask it to write them back (kSync, sent
// before a restore); `answer` replies kSynced, `ignore` never does. Exit 0
// once asked.
#include <linux/fuse.h>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "protocol/curve_keys.h"
#include "protocol/remote.h"
#include "protocol/transport.h"

namespace remote = roam::proto::remote;

namespace {

template <typename T>
std::string bytes_of(const T& v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string request(uint32_t opcode, uint64_t nodeid, const std::string& args, uint64_t unique) {
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(sizeof h + args.size());
  h.opcode = opcode;
  h.unique = unique;
  h.nodeid = nodeid;
  return bytes_of(h) + args;
}

bool send(zmq::socket_t& s, remote::Kind kind, const std::string& text, const std::string& payload) {
  std::string meta = remote::encode_meta({kind, text});
  std::vector<zmq::const_buffer> parts{zmq::buffer(meta), zmq::buffer(payload)};
  return zmq::send_multipart(s, parts, zmq::send_flags::dontwait).has_value();
}

// The next message within `ms`: its meta and payload.
std::optional<std::pair<remote::Meta, std::string>> receive(zmq::socket_t& s, int ms) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, std::chrono::milliseconds(ms)) == 0) return std::nullopt;
  std::vector<zmq::message_t> parts;
  if (!zmq::recv_multipart(s, std::back_inserter(parts)) || parts.size() != 2) return std::nullopt;
  auto meta = remote::decode_meta(parts[0].to_string_view());
  if (!meta) return std::nullopt;
  return std::make_pair(*meta, parts[1].to_string());
}

// The reply to `unique`, skipping others (answers to fuzz), within `ms`.
std::optional<fuse_out_header> reply_to(zmq::socket_t& s, uint64_t unique, int ms = 5000) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = receive(s, 200);
    if (!m || m->second.size() < sizeof(fuse_out_header)) continue;
    fuse_out_header h;
    std::memcpy(&h, m->second.data(), sizeof h);
    if (h.unique == unique) return h;
  }
  return std::nullopt;
}

struct Probe {
  zmq::context_t ctx;
  std::optional<zmq::socket_t> s;
  uint64_t next_unique = 2;
  int failures = 0;

  void check(bool ok, const char* what) {
    std::printf("%s: %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) ++failures;
  }

  // A new connection, Hello, Welcome and the kernel's INIT, as a mount does.
  bool open(const std::string& endpoint, const roam::proto::KeyPair& keys, const std::string& server) {
    auto sock = roam::proto::connect_dealer(ctx, endpoint, keys, server);
    if (!sock) return false;
    s.emplace(std::move(*sock));
    send(*s, remote::Kind::kHello, "probe", "");
    auto w = receive(*s, 5000);
    if (!w || w->first.kind != remote::Kind::kWelcome) return false;
    fuse_init_in init{};
    init.major = FUSE_KERNEL_VERSION;
    init.minor = FUSE_KERNEL_MINOR_VERSION;
    const uint64_t u = next_unique++;
    send(*s, remote::Kind::kRequest, "probe", request(FUSE_INIT, 0, bytes_of(init), u));
    auto r = reply_to(*s, u);
    return r && r->error == 0;
  }

  // Whether a GETATTR of the root is answered with its attributes.
  bool root_answers() {
    const uint64_t u = next_unique++;
    send(*s, remote::Kind::kRequest, "probe", request(FUSE_GETATTR, FUSE_ROOT_ID, bytes_of(fuse_getattr_in{}), u));
    auto r = reply_to(*s, u);
    return r && r->error == 0 && r->len >= sizeof(fuse_out_header) + sizeof(fuse_attr_out);
  }

  // The error a request naming handle `fh` (never opened) gets.
  int forged_handle_error(uint32_t opcode, uint64_t fh) {
    const uint64_t u = next_unique++;
    std::string args;
    if (opcode == FUSE_READ || opcode == FUSE_READDIR) {
      fuse_read_in in{};
      in.fh = fh, in.size = 4096;
      args = bytes_of(in);
    } else {
      fuse_release_in in{};
      in.fh = fh;
      args = bytes_of(in);
    }
    send(*s, remote::Kind::kRequest, "probe", request(opcode, FUSE_ROOT_ID, args, u));
    auto r = reply_to(*s, u);
    return r ? -r->error : -1;
  }

  void fuzz(std::mt19937_64& rng, int count) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (int i = 0; i < count; ++i) {
      std::string f;
      if (i % 2 == 0) {  // random bytes, sometimes with a consistent length
        f.resize(std::uniform_int_distribution<size_t>(0, 300)(rng));
        for (char& c : f) c = static_cast<char>(byte(rng));
      } else {  // a valid-looking request of a random opcode with random arguments
        std::string args(std::uniform_int_distribution<size_t>(0, 200)(rng), '\0');
        for (char& c : args) c = static_cast<char>(byte(rng));
        f = request(std::uniform_int_distribution<uint32_t>(1, 52)(rng), std::uniform_int_distribution<uint64_t>(0, 5)(rng),
                    args, next_unique++);
      }
      if (i % 3 == 0 && f.size() >= 4) {
        const auto len = static_cast<uint32_t>(f.size());
        std::memcpy(f.data(), &len, sizeof len);
      }
      send(*s, remote::Kind::kRequest, std::string(i % 20, 'x'), f);
      if (i % 50 == 0) send(*s, remote::Kind::kRequest, "", std::string());  // an empty frame
    }
  }
};

}  // namespace

// The --sync mode (see the top of the file).
int await_sync(Probe& p, bool answer) {
  std::printf("session open\n");
  std::fflush(stdout);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto m = receive(*p.s, 200);
    if (!m || m->first.kind != remote::Kind::kSync) continue;
    if (answer) send(*p.s, remote::Kind::kSynced, "", "");
    p.check(true, "roamfs asked this desktop to write back its cached changes");
    return 0;
  }
  p.check(false, "roamfs asked this desktop to write back its cached changes");
  return 1;
}

int main(int argc, char** argv) {
  std::optional<bool> answer_sync;  // --sync answer|ignore
  if (argc == 5 && std::string(argv[1]) == "--sync") {
    answer_sync = std::string(argv[2]) == "answer";
    argv += 2, argc -= 2;
  }
  if (argc != 3) {
    std::fprintf(stderr, "usage: remote-probe [--sync answer|ignore] ENDPOINT#SERVERKEY KEYFILE\n");
    return 2;
  }
  std::string target = argv[1];
  const size_t hash = target.rfind('#');
  auto server = roam::proto::key_from_hex(target.substr(hash + 1), "server key");
  auto keys = roam::proto::read_key_file(argv[2]);
  if (hash == std::string::npos || !server || !keys) {
    std::fprintf(stderr, "remote-probe: bad arguments\n");
    return 2;
  }
  const std::string endpoint = target.substr(0, hash);
  Probe p;
  if (answer_sync) {
    if (!p.open(endpoint, *keys, *server)) return 1;
    return await_sync(p, *answer_sync);
  }
  std::mt19937_64 rng(std::random_device{}());
  p.check(p.open(endpoint, *keys, *server), "a session opens");
  p.check(p.root_answers(), "the root's attributes are answered");
  for (int round = 0; round < 3; ++round) {
    p.fuzz(rng, 300);
    p.check(p.root_answers(), "after 300 random and mutated frames the root is still answered");
  }
  bool all_ebadf = true;
  for (uint64_t fh : {uint64_t{0x1000}, uint64_t{0xdeadbeef}, ~uint64_t{0}, uint64_t{8}})
    for (uint32_t op : {uint32_t{FUSE_READ}, uint32_t{FUSE_READDIR}, uint32_t{FUSE_RELEASE}, uint32_t{FUSE_RELEASEDIR}})
      all_ebadf = all_ebadf && p.forged_handle_error(op, fh) == EBADF;
  p.check(all_ebadf, "requests naming handles never opened get EBADF");
  p.check(p.root_answers(), "and the root is still answered");
  send(*p.s, remote::Kind::kRequest, "probe", std::string(2 << 20, 'x'));  // over kMaxFuseMessage
  p.check(!p.root_answers(), "a frame over 1 MiB + 4 KiB drops the connection");
  p.check(p.open(endpoint, *keys, *server) && p.root_answers(), "a new connection gets a session that answers");
  return p.failures == 0 ? 0 : 1;
}
