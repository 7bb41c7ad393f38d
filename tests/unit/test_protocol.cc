// The wire protocol's codec: every message survives encode/decode; every
// malformed input is an EPROTO error naming the problem; random, truncated
// and oversized frames never crash the decoder (run under ASan/UBSan too).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>

#include "protocol/local_socket.h"
#include "protocol/protocol.h"

using namespace roam;
using namespace roam::proto;

namespace {

std::vector<std::string_view> views(const std::vector<std::string>& frames) {
  return {frames.begin(), frames.end()};
}

Result<Message> decode_frames(const std::vector<std::string>& frames) { return decode(views(frames)); }

std::vector<Message> one_of_each() {
  return {Register{"desk-1"},
          Register{"desk-2", "remote"},
          Heartbeat{},
          Damage{"health check 'df /' exited with 1"},
          DetachDone{7, 0, "detached"},
          AttachDone{8, EIO, "not a FUSE filesystem"},
          Detach{9, "alice", false, 2000},
          Attach{10, "alice", "/run/roamdisk/exports/A/alice@3"},
          Attach{10, "alice", "tcp://10.0.0.1:7000#" + std::string(64, 'a')},
          Attach{10, "alice", "tcp://:7000#" + std::string(64, 'F')},
          SwitchRequest{11, "alice", "B", true},
          StatusRequest{12},
          DesktopCreate{13, "B"},
          DesktopRemove{14, "B"},
          DesktopList{15},
          DiskCreate{16, "bob"},
          DiskList{17},
          UserAdd{18, "bob"},
          UserList{UINT64_MAX},
          Reply{19, 0, "ok", {join_cells({"user", "desktop"}), join_cells({"alice", "A"})}},
          AuditList{20, 5},
          DiskQuota{21, "bob", 8ull << 20},
          HistoryRequest{22, "", 1000, 1000, "27,100", 4321, "roam", "restore", "/thesis.odt", "-5m", 0, "/copy",
                         "", "", 0, true, 0},
          HistoryRequest{23, "", 1000, 1000, "", 4321, "roam", "undo", "", "", 0, "", "-1h", "", 0, true, 777}};
}

void require_protocol_error(const Result<Message>& r, const std::string& words) {
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().err() == EPROTO);
  CHECK_THAT(r.status().message(), Catch::Contains(words));
}

uint64_t seed_from_env() {
  const char* s = std::getenv("ROAM_SEED");
  return s ? std::strtoull(s, nullptr, 10) : std::random_device{}();
}

}  // namespace

TEST_CASE("every message type round-trips through encode and decode") {
  for (const auto& m : one_of_each()) {
    auto frames = encode(m);
    auto back = decode_frames(frames);
    INFO(type_name(type_of(m)));
    REQUIRE(back.is_ok());
    CHECK(type_of(*back) == type_of(m));
    CHECK(encode(*back) == frames);
    CHECK(request_id_of(*back) == request_id_of(m));
  }
}

TEST_CASE("decode names what is wrong") {
  auto ok = encode(SwitchRequest{1, "alice", "B", true});
  auto with = [&](size_t i, std::string v) {
    auto f = ok;
    f[i] = std::move(v);
    return decode_frames(f);
  };
  require_protocol_error(decode_frames({}), "fewer than 2 frames");
  require_protocol_error(with(0, "ROAM2"), "wrong protocol or version");
  require_protocol_error(with(1, std::string(1, '\0')), "unknown message type 0");
  require_protocol_error(with(1, std::string(1, '\x7f')), "unknown message type 127");
  require_protocol_error(with(1, "ab"), "one type byte");
  require_protocol_error(with(2, "-1"), "decimal digits");
  require_protocol_error(with(2, "18446744073709551616"), "within 64 bits");
  require_protocol_error(with(2, "123456789012345678901"), "1 to 20 digits");
  require_protocol_error(with(2, ""), "1 to 20 digits");
  require_protocol_error(with(3, "../etc"), "a name must be");
  require_protocol_error(with(3, ""), "a name must be");
  require_protocol_error(with(3, std::string(65, 'a')), "a name must be");
  require_protocol_error(with(3, "al ice"), "a name must be");
  require_protocol_error(with(4, ".hidden"), "a name must be");
  require_protocol_error(with(5, "yes"), "a flag must be 0 or 1");
  auto missing = ok;
  missing.pop_back();
  require_protocol_error(decode_frames(missing), "switch-request takes 4 fields, got 3");
  auto extra = ok;
  extra.push_back("x");
  require_protocol_error(decode_frames(extra), "takes 4 fields, got 5");

  auto attach = encode(Attach{1, "alice", "/a/b"});
  for (const std::string& bad : std::vector<std::string>{"relative/path", "/a/../b", "/a/./b", "/a/..", "/a\nb",
                                                       std::string("/a\0b", 4)}) {
    attach[4] = bad;
    require_protocol_error(decode_frames(attach), "an export must be an absolute path");
  }
  auto damage = encode(Damage{"x"});
  damage[2] = std::string("a\0b", 3);
  require_protocol_error(decode_frames(damage), "contains NUL");
  damage[2] = std::string(kMaxFieldBytes + 1, 'x');
  require_protocol_error(decode_frames(damage), "longer than 4096 bytes");
}

TEST_CASE("an old agent's register (no mount driver) is a bind desktop; a bad driver is refused") {
  auto old = decode_frames({std::string(kMagic), std::string(1, '\x01'), "desk-1"});
  REQUIRE(old.is_ok());
  CHECK(std::get<Register>(*old).mount_driver == "bind");
  auto remote = decode_frames(encode(Register{"desk-1", "remote"}));
  REQUIRE(remote.is_ok());
  CHECK(std::get<Register>(*remote).mount_driver == "remote");
  require_protocol_error(decode_frames({std::string(kMagic), std::string(1, '\x01'), "desk-1", "nfs"}),
                         "mount driver must be bind or remote");
  require_protocol_error(decode_frames({std::string(kMagic), std::string(1, '\x01'), "desk-1", ""}),
                         "mount driver must be bind or remote");
  require_protocol_error(decode_frames({std::string(kMagic), std::string(1, '\x01'), "desk-1", "bind", "x"}),
                         "register takes 1 to 2 fields, got 3");
  require_protocol_error(decode_frames({std::string(kMagic), std::string(1, '\x01')}),
                         "register takes 1 to 2 fields, got 0");
}

TEST_CASE("an attach's export is a path or a remote export, nothing else") {
  const std::string key(64, 'b');
  for (const std::string& good : std::vector<std::string>{"tcp://10.201.0.1:7000#" + key, "tcp://:1#" + key,
                                                         "tcp://[::1]:65535#" + key,
                                                         "tcp://storage-1.example:7000#" + key})
    CHECK(valid_remote_export(good));
  for (const std::string& bad : std::vector<std::string>{
           "tcp://10.0.0.1:0#" + key, "tcp://10.0.0.1:65536#" + key, "tcp://10.0.0.1:7000#" + key.substr(1),
           "tcp://10.0.0.1:7000#" + key + "0", "tcp://10.0.0.1:7000#" + std::string(64, 'g'),
           "tcp://10.0.0.1#" + key, "tcp://10.0.0.1:7000", "tcp://a b:7000#" + key, "tcp://[]:7000#" + key,
           "ipc://x:7000#" + key, "tcp://10.0.0.1:+70#" + key, "tcp://a/b:7000#" + key,
           "tcp://10.0.0.1:7000#" + key + "#" + key}) {
    INFO(bad);
    CHECK_FALSE(valid_remote_export(bad));
    auto frames = encode(Attach{1, "alice", bad});
    require_protocol_error(decode_frames(frames), "an export must be an absolute path or tcp://HOST:PORT#KEY");
  }
}

TEST_CASE("oversized messages are refused before their fields are read") {
  auto reply = encode(Reply{1, 0, "ok", {}});
  auto many = reply;
  many.resize(kMaxFrames + 1, "row");
  require_protocol_error(decode_frames(many), "more than " + std::to_string(kMaxFrames) + " frames");
  auto big = reply;
  for (int i = 0; i < 300; ++i) big.push_back(std::string(kMaxFieldBytes, 'r'));
  require_protocol_error(decode_frames(big), "larger than");
}

TEST_CASE("table cells split back into what was joined") {
  std::vector<std::string> cells{"alice", "", "A", "/run/x"};
  CHECK(split_cells(join_cells(cells)) == cells);
  CHECK(split_cells("") == std::vector<std::string>{""});
}

TEST_CASE("a cell may hold any byte, and a row of such cells is a valid reply row") {
  // A busy process's name (which any user sets) ends up in an audit cell.
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  std::vector<std::string> cells{"a\x1f" "b", std::string("nul\0inside", 11), "\x1e", "\x1e" "s", every_byte, ""};
  const std::string row = join_cells(cells);
  CHECK(split_cells(row) == cells);
  CHECK(row.find('\0') == std::string::npos);
  auto frames = encode(Reply{1, 0, "ok", {row}});
  auto back = decode_frames(frames);
  REQUIRE(back.is_ok());
  CHECK(split_cells(std::get<Reply>(*back).rows.at(0)) == cells);
  // A row written before cells were escaped keeps a 0x1E that escapes nothing.
  CHECK(split_cells("a\x1eZ\x1f" "b\x1e") == std::vector<std::string>{"a\x1eZ", "b\x1e"});
}

TEST_CASE("a table of 4,100 users fits in one reply; a larger one is cut to what fits") {
  auto table = [](size_t n) {
    std::vector<std::string> rows{join_cells({"user", "disk", "desktop"})};
    for (size_t i = 0; i < n; ++i) rows.push_back(join_cells({"user-" + std::to_string(i), "yes", "desktop-x"}));
    return rows;
  };
  auto users = table(4100);
  CHECK(bound_rows(users) == 0);
  auto decoded = decode_frames(encode(Reply{1, 0, "ok", users}));
  REQUIRE(decoded.is_ok());
  CHECK(std::get<Reply>(*decoded).rows.size() == 4101);

  auto huge = table(200000);
  const size_t dropped = bound_rows(huge);
  CHECK(dropped > 0);
  CHECK(huge.size() + dropped == 200001);
  CHECK(decode_frames(encode(Reply{1, 0, "cut", huge})).is_ok());

  std::vector<std::string> long_row{join_cells({"x", std::string(3 * kMaxFieldBytes, '\x1f')})};
  CHECK(bound_rows(long_row) == 0);
  CHECK(long_row[0].size() <= kMaxFieldBytes);
  CHECK(decode_frames(encode(Reply{1, 0, "ok", long_row})).is_ok());
}

TEST_CASE("a Status crosses the wire as a reply and comes back the same") {
  Status st = Status::error(EBUSY, "desktop B is in use by user bob");
  Reply r = reply_for(5, st);
  CHECK(r.code == EBUSY);
  Status back = status_of(r);
  CHECK(back.err() == EBUSY);
  CHECK(back.message() == st.message());
  CHECK(status_of(reply_for(5, Status::ok())).is_ok());
  CHECK(status_of(Reply{1, 1u << 20, "odd", {}}).err() == EIO);
  CHECK(status_of(Reply{1, uint64_t{1} << 32, "truncates to 0", {}}).err() == EIO);
  CHECK(errno_of(uint64_t{1} << 32) == EIO);
  CHECK(errno_of(0) == EIO);
  CHECK(errno_of(EBUSY) == EBUSY);
}

TEST_CASE("random, mutated and truncated frames never crash the decoder") {
  const uint64_t seed = seed_from_env();
  INFO("ROAM_SEED=" << seed);
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto random_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  const auto samples = one_of_each();
  size_t accepted = 0, refused = 0;
  for (int round = 0; round < 50000; ++round) {
    std::vector<std::string> frames = encode(samples[pick(samples.size())]);
    switch (pick(6)) {
      case 0:  // truncate the message
        frames.resize(pick(frames.size() + 1));
        break;
      case 1:  // truncate or extend one frame
        if (!frames.empty()) frames[pick(frames.size())].resize(pick(80));
        break;
      case 2:  // flip bytes
        for (int i = 0; i < 3 && !frames.empty(); ++i) {
          auto& f = frames[pick(frames.size())];
          if (!f.empty()) f[pick(f.size())] = static_cast<char>(rng());
        }
        break;
      case 3:  // random frames after a valid header
        frames.resize(2);
        for (size_t i = pick(8); i > 0; --i) frames.push_back(random_bytes(pick(100)));
        break;
      case 4:  // entirely random
        frames.clear();
        for (size_t i = pick(6); i > 0; --i) frames.push_back(random_bytes(pick(40)));
        break;
      default:  // duplicate or drop a frame
        if (!frames.empty()) {
          size_t i = pick(frames.size());
          if (rng() & 1) frames.insert(frames.begin() + static_cast<long>(i), frames[i]);
          else frames.erase(frames.begin() + static_cast<long>(i));
        }
    }
    auto r = decode_frames(frames);
    if (r.is_ok()) {
      ++accepted;
      // What is accepted is a canonical message: it encodes to a message
      // that decodes to the same frames again.
      auto again = encode(*r);
      auto r2 = decode_frames(again);
      REQUIRE(r2.is_ok());
      REQUIRE(encode(*r2) == again);
    } else {
      ++refused;
      REQUIRE(r.status().err() == EPROTO);
      REQUIRE_FALSE(r.status().message().empty());
    }
  }
  CHECK(accepted > 0);
  CHECK(refused > 0);
}

namespace {

// The local socket's form of `m`: frame count, then each frame's length and bytes.
std::string local_bytes(const Message& m) {
  std::string out;
  auto u32 = [&out](uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  const auto frames = encode(m);
  u32(static_cast<uint32_t>(frames.size()));
  for (const auto& f : frames) {
    u32(static_cast<uint32_t>(f.size()));
    out += f;
  }
  return out;
}

}  // namespace

TEST_CASE("the local socket's messages parse once whole, and not before") {
  const Message m = HistoryRequest{5, "", 0, 0, "", 0, "", "log", "/docs", "", 0, "", "-1h", "sh", 10, false, 0};
  const std::string bytes = local_bytes(m);
  for (size_t n = 0; n < bytes.size(); ++n) CHECK_FALSE(parse_message(std::string_view(bytes).substr(0, n)).has_value());
  auto whole = parse_message(bytes);
  REQUIRE(whole.has_value());
  REQUIRE(whole->is_ok());
  CHECK(encode(whole->value()) == encode(m));
}

TEST_CASE("the local socket refuses a count or a length beyond the limits before reading on") {
  require_protocol_error(*parse_message(std::string("\x00\x01\x00\x01", 4)), "frames");
  std::string huge("\x00\x00\x00\x02\x00\x20\x00\x00", 8);  // 2 frames, the first of 2 MiB
  require_protocol_error(*parse_message(huge), "bytes");
  // A whole message that decode() refuses: a history request without its fields.
  std::string bad("\x00\x00\x00\x02\x00\x00\x00\x05ROAM1\x00\x00\x00\x01\x14", 18);  // type 20
  require_protocol_error(*parse_message(bad), "history-request takes 17 fields");
}

