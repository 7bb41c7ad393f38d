// The remote-disk wire (protocol/remote.h): every FUSE frame a desktop sends
// is checked before libfuse sees it, and file handles are the session's own.
#include <linux/fuse.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "protocol/remote.h"

namespace remote = roam::proto::remote;

namespace {

template <typename T>
std::string bytes_of(const T& v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

// A request: header (length filled in), then `args`.
std::string request(uint32_t opcode, uint64_t nodeid, const std::string& args, uint64_t unique = 7) {
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(sizeof h + args.size());
  h.opcode = opcode;
  h.unique = unique;
  h.nodeid = nodeid;
  h.uid = 1000, h.gid = 1000, h.pid = 42;
  return bytes_of(h) + args;
}

std::string with_len(std::string frame, uint32_t len) {
  std::memcpy(frame.data(), &len, sizeof len);
  return frame;
}

std::string name(const char* s) { return std::string(s) + '\0'; }

std::string write_req(const std::string& data, uint64_t fh = 1, uint64_t unique = 7) {
  fuse_write_in w{};
  w.fh = fh;
  w.size = static_cast<uint32_t>(data.size());
  return request(FUSE_WRITE, 2, bytes_of(w) + data, unique);
}

std::string read_req(uint64_t fh, uint64_t nodeid, uint64_t unique, uint32_t opcode = FUSE_READ) {
  fuse_read_in r{};
  r.fh = fh;
  r.size = 4096;
  return request(opcode, nodeid, bytes_of(r), unique);
}

std::string release_req(uint64_t fh, uint64_t nodeid, uint64_t unique, uint32_t opcode = FUSE_RELEASE) {
  fuse_release_in r{};
  r.fh = fh;
  return request(opcode, nodeid, bytes_of(r), unique);
}

std::string copy_req(uint64_t fh_in, uint64_t node_in, uint64_t fh_out, uint64_t node_out, uint64_t unique) {
  fuse_copy_file_range_in c{};
  c.fh_in = fh_in;
  c.fh_out = fh_out;
  c.nodeid_out = node_out;
  c.len = 4096;
  return request(FUSE_COPY_FILE_RANGE, node_in, bytes_of(c), unique);
}

std::string setxattr_req(bool ext, const std::string& value) {
  fuse_setxattr_in x{};
  x.size = static_cast<uint32_t>(value.size());
  std::string fixed = bytes_of(x).substr(0, ext ? sizeof x : FUSE_COMPAT_SETXATTR_IN_SIZE);
  return request(FUSE_SETXATTR, 2, fixed + name("user.a") + value);
}

std::string batch_forget_req(uint32_t count) {
  fuse_batch_forget_in b{};
  b.count = count;
  std::string args = bytes_of(b);
  for (uint32_t i = 0; i < count; ++i) args += bytes_of(fuse_forget_one{i + 2, 1});
  return request(FUSE_BATCH_FORGET, 0, args);
}

// A well-formed request, and whether its session negotiated SETXATTR_EXT.
struct Sample {
  std::string frame;
  bool setxattr_ext = true;
};

// Well-formed requests of the served kinds, each with nothing to spare: any
// shorter frame is malformed.
std::vector<Sample> good_requests() {
  fuse_init_in init{};
  init.major = 7;
  init.minor = 38;
  fuse_mkdir_in mkdir{};
  fuse_rename2_in rename{};
  fuse_getattr_in getattr{};
  return {
      {request(FUSE_INIT, 0, bytes_of(init).substr(0, offsetof(fuse_init_in, flags) + 4))},
      {request(FUSE_LOOKUP, 1, name("abc"))},
      {request(FUSE_MKDIR, 1, bytes_of(mkdir) + name("d"))},
      {request(FUSE_RENAME2, 1, bytes_of(rename) + name("a") + name("b"))},
      {request(FUSE_SYMLINK, 1, name("link") + name("/target"))},
      {request(FUSE_GETATTR, 1, bytes_of(getattr))},
      {write_req("hello")},
      {copy_req(1, 2, 3, 4, 7)},
      {setxattr_req(false, "v1"), false},
      {setxattr_req(true, "v1"), true},
      {batch_forget_req(2)},
  };
}

// A reply to `unique`: header, then `body`.
std::string reply(uint64_t unique, const std::string& body, int32_t error = 0) {
  fuse_out_header h{};
  h.len = static_cast<uint32_t>(sizeof h + body.size());
  h.error = error;
  h.unique = unique;
  return bytes_of(h) + body;
}

std::string open_reply(uint64_t unique, uint64_t fh) {
  fuse_open_out o{};
  o.fh = fh;
  return reply(unique, bytes_of(o));
}

}  // namespace

TEST_CASE("well-formed requests of the served operations pass") {
  for (const Sample& r : good_requests()) {
    INFO("opcode " << reinterpret_cast<const fuse_in_header*>(r.frame.data())->opcode);
    CHECK(remote::validate_request(r.frame, r.setxattr_ext));
  }
  CHECK(remote::validate_request(request(FUSE_STATFS, 1, ""), false));
  CHECK(remote::validate_request(request(FUSE_LOOKUP, 1, name("x") + "trailing"), false));
}

TEST_CASE("a truncated request is refused, whatever its header says") {
  for (const Sample& r : good_requests()) {
    INFO("opcode " << reinterpret_cast<const fuse_in_header*>(r.frame.data())->opcode);
    for (size_t n = 0; n < r.frame.size(); ++n) {
      std::string cut = r.frame.substr(0, n);
      CHECK(remote::validate_request(cut, r.setxattr_ext).err() == EPROTO);  // the header's length is the whole's
      if (n >= sizeof(fuse_in_header))
        CHECK(remote::validate_request(with_len(cut, static_cast<uint32_t>(n)), r.setxattr_ext).err() == EPROTO);
    }
  }
}

TEST_CASE("a header length other than the frame's is refused") {
  std::string r = request(FUSE_LOOKUP, 1, name("abc"));
  CHECK(remote::validate_request(with_len(r, static_cast<uint32_t>(r.size() + 1)), false).err() == EPROTO);
  CHECK(remote::validate_request(with_len(r, static_cast<uint32_t>(r.size() - 1)), false).err() == EPROTO);
  CHECK(remote::validate_request(with_len(r, 0), false).err() == EPROTO);
  CHECK(remote::validate_request(with_len(r, UINT32_MAX), false).err() == EPROTO);
}

TEST_CASE("an oversized request is refused, and data sizes must lie inside the frame") {
  CHECK(remote::validate_request(write_req(std::string(1 << 20, 'x')), false));
  CHECK(remote::validate_request(write_req(std::string(remote::kMaxFuseMessage, 'x')), false).err() == EPROTO);
  std::string w = write_req("hello");
  auto* in = reinterpret_cast<fuse_write_in*>(w.data() + sizeof(fuse_in_header));
  in->size = 6;
  CHECK(remote::validate_request(w, false).err() == EPROTO);
  CHECK(remote::validate_request(batch_forget_req(2).substr(0, sizeof(fuse_in_header) + 8 + 16), false).err() ==
        EPROTO);
  std::string x = setxattr_req(false, "v1");
  reinterpret_cast<fuse_setxattr_in*>(x.data() + sizeof(fuse_in_header))->size = 3;
  CHECK(remote::validate_request(x, false).err() == EPROTO);
}

TEST_CASE("offsets and sizes past the largest file are refused, as the kernel never sends them") {
  std::string w = write_req("hello");
  auto* in = reinterpret_cast<fuse_write_in*>(w.data() + sizeof(fuse_in_header));
  in->offset = INT64_MAX - 5;
  CHECK(remote::validate_request(w, false));
  in->offset = INT64_MAX - 4;
  CHECK(remote::validate_request(w, false).err() == EFBIG);
  in->offset = ~uint64_t{0};  // a negative off_t for libfuse
  CHECK(remote::validate_request(w, false).err() == EFBIG);
  fuse_fallocate_in f{};
  f.offset = 1;
  f.length = INT64_MAX;
  CHECK(remote::validate_request(request(FUSE_FALLOCATE, 2, bytes_of(f)), false).err() == EFBIG);
  fuse_setattr_in a{};
  a.valid = FATTR_SIZE;
  a.size = uint64_t{INT64_MAX} + 1;
  CHECK(remote::validate_request(request(FUSE_SETATTR, 2, bytes_of(a)), false).err() == EFBIG);
  a.valid = FATTR_MODE;  // the size is not looked at
  CHECK(remote::validate_request(request(FUSE_SETATTR, 2, bytes_of(a)), false));
  std::string c = copy_req(1, 2, 3, 4, 7);
  auto* copy = reinterpret_cast<fuse_copy_file_range_in*>(c.data() + sizeof(fuse_in_header));
  copy->off_out = INT64_MAX - 4096;
  CHECK(remote::validate_request(c, false));
  copy->off_out = INT64_MAX - 4095;
  CHECK(remote::validate_request(c, false).err() == EFBIG);
  copy->off_out = 0;
  copy->off_in = ~uint64_t{0};
  CHECK(remote::validate_request(c, false).err() == EFBIG);
}

TEST_CASE("an unknown or unserved opcode is ENOSYS; request id 0 is refused") {
  for (uint32_t op : {0u, uint32_t{FUSE_DESTROY}, uint32_t{FUSE_IOCTL}, uint32_t{FUSE_SETUPMAPPING}, uint32_t{CUSE_INIT}, 9999u,
                      uint32_t{FUSE_NOTIFY_REPLY}, uint32_t{FUSE_SETLK}})
    CHECK(remote::validate_request(request(op, 1, std::string(64, '\0')), false).err() == ENOSYS);
  CHECK(remote::validate_request(request(FUSE_STATFS, 1, "", 0), false).err() == EPROTO);
}

TEST_CASE("random and mutated frames never crash the validator") {
  std::mt19937_64 rng(Catch::rngSeed());
  std::uniform_int_distribution<int> byte(0, 255);
  const auto good = good_requests();
  size_t accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string f = good[static_cast<size_t>(i) % good.size()].frame;
    if (i % 3 == 0) f.resize(std::uniform_int_distribution<size_t>(0, 300)(rng));
    for (int k = 0; k < 4; ++k)
      if (!f.empty()) f[std::uniform_int_distribution<size_t>(0, f.size() - 1)(rng)] = static_cast<char>(byte(rng));
    if (i % 2 && f.size() >= 4) f = with_len(f, static_cast<uint32_t>(f.size()));
    if (remote::validate_request(f, i % 4 == 0)) {
      ++accepted;
      CHECK(reinterpret_cast<const fuse_in_header*>(f.data())->len == f.size());
    }
  }
  CHECK(accepted > 0);  // the mutations leave some frames whole
}

TEST_CASE("replies and notifications: the header's length is the frame's") {
  CHECK(remote::validate_reply(reply(7, "abcd")));
  CHECK(remote::validate_reply(reply(0, std::string(16, '\0'), FUSE_NOTIFY_INVAL_ENTRY)));
  CHECK(remote::validate_reply(remote::error_reply(7, ENOTCONN)));
  CHECK(remote::validate_reply(reply(7, "abcd").substr(0, 17)).err() == EPROTO);
  CHECK(remote::validate_reply(reply(0, "", 0)).err() == EPROTO);
  CHECK(remote::validate_reply(reply(7, "", 5)).err() == EPROTO);
}

TEST_CASE("meta frames: kinds, versions and bounded text") {
  auto m = remote::decode_meta(remote::encode_meta({remote::Kind::kRequest, "a-very-long-process-name"}));
  REQUIRE(m);
  CHECK(m->kind == remote::Kind::kRequest);
  CHECK(m->text == "a-very-long-pro");  // 15 bytes, as the kernel keeps comm
  CHECK(remote::decode_meta(std::string("\x01R") + std::string(16, 'x')).status().err() == EPROTO);
  CHECK(remote::decode_meta("\x02R").status().err() == EPROTO);
  CHECK(remote::decode_meta("\x01Z").status().err() == EPROTO);
  CHECK(remote::decode_meta("\x01").status().err() == EPROTO);
  CHECK(remote::decode_meta("\x01Wx").status().err() == EPROTO);
  for (auto kind : {remote::Kind::kSync, remote::Kind::kSynced}) {
    auto k = remote::decode_meta(remote::encode_meta({kind, "ignored"}));
    REQUIRE(k);
    CHECK(k->kind == kind);
    CHECK(k->text.empty());
  }
}

TEST_CASE("a desktop names only handles its session opened, of their kind and inode") {
  remote::HandleGuard g;
  CHECK(g.admit(read_req(0x1000, 2, 1)) == EBADF);  // never opened: a pointer roamfs must not follow
  fuse_open_in open{};
  CHECK(g.admit(request(FUSE_OPEN, 2, bytes_of(open), 2)) == 0);
  g.replied(open_reply(2, 0x1000));
  CHECK(g.admit(request(FUSE_OPENDIR, 3, bytes_of(open), 3)) == 0);
  g.replied(open_reply(3, 0x2000));
  CHECK(g.open_handles() == 2);

  CHECK(g.admit(read_req(0x1000, 2, 4)) == 0);
  CHECK(g.admit(read_req(0x1000, 9, 5)) == EBADF);                   // another inode
  CHECK(g.admit(read_req(0x2000, 3, 6)) == EBADF);                   // a directory's handle as a file's
  CHECK(g.admit(read_req(0x1000, 2, 7, FUSE_READDIR)) == EBADF);     // and the other way round
  CHECK(g.admit(read_req(0x2000, 3, 8, FUSE_READDIRPLUS)) == 0);
  CHECK(g.admit(read_req(0x1000, 2, 4)) == EPROTO);                  // request 4 is still in flight
  CHECK(g.admit(release_req(0x1000, 2, 9)) == EBUSY);                // in use by request 4
  g.replied(reply(4, "data"));
  CHECK(g.admit(release_req(0x1000, 2, 10)) == 0);
  CHECK(g.admit(read_req(0x1000, 2, 11)) == EBADF);                  // released: gone at once
  CHECK(g.admit(release_req(0x1000, 2, 12)) == EBADF);               // no double release
  g.replied(reply(10, ""));
  CHECK(g.open_handles() == 1);

  // CREATE's handle belongs to the new inode; a failed OPEN adds nothing.
  fuse_create_in create{};
  CHECK(g.admit(request(FUSE_CREATE, 3, bytes_of(create) + name("n"), 13)) == 0);
  fuse_entry_out entry{};
  entry.nodeid = 5;
  fuse_open_out out{};
  out.fh = 0x3000;
  g.replied(reply(13, bytes_of(entry) + bytes_of(out)));
  CHECK(g.admit(write_req("x", 0x3000, 14)) == EBADF);  // write_req names inode 2
  CHECK(g.admit(request(FUSE_OPEN, 2, bytes_of(open), 15)) == 0);
  g.replied(reply(15, bytes_of(out), -EACCES));
  CHECK(g.open_handles() == 2);
}

TEST_CASE("COPY_FILE_RANGE names two handles, each of its own inode, both in use until its reply") {
  remote::HandleGuard g;
  fuse_open_in open{};
  CHECK(g.admit(request(FUSE_OPEN, 2, bytes_of(open), 1)) == 0);
  g.replied(open_reply(1, 0x1000));
  CHECK(g.admit(request(FUSE_OPEN, 5, bytes_of(open), 2)) == 0);
  g.replied(open_reply(2, 0x5000));

  CHECK(g.admit(copy_req(0x1000, 2, 0x9000, 5, 3)) == EBADF);  // the destination's handle was never opened
  CHECK(g.admit(copy_req(0x9000, 2, 0x5000, 5, 4)) == EBADF);  // nor the source's
  CHECK(g.admit(copy_req(0x1000, 2, 0x5000, 2, 5)) == EBADF);  // the destination's handle is of inode 5
  CHECK(g.admit(copy_req(0x1000, 5, 0x5000, 5, 6)) == EBADF);  // the source's of inode 2
  CHECK(g.admit(copy_req(0x1000, 2, 0x5000, 5, 7)) == 0);
  CHECK(g.admit(release_req(0x1000, 2, 8)) == EBUSY);
  CHECK(g.admit(release_req(0x5000, 5, 9)) == EBUSY);
  g.replied(reply(7, std::string(sizeof(fuse_write_out), '\0')));
  CHECK(g.admit(release_req(0x1000, 2, 10)) == 0);
  CHECK(g.admit(release_req(0x5000, 5, 11)) == 0);
  CHECK(g.admit(copy_req(0x1000, 2, 0x5000, 5, 12)) == EBADF);  // both released
}
