#include "protocol/remote.h"

#include <linux/fuse.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>

namespace roam::proto::remote {

namespace {

Status bad(const std::string& what) { return Status::error(EPROTO, "bad FUSE frame: " + what); }

size_t text_bound(Kind k) {
  switch (k) {
    case Kind::kRequest:
      return kMaxComm;
    case Kind::kHello:
      return kMaxDesktopId;
    default:
      return 0;
  }
}

bool known_kind(uint8_t k) {
  switch (static_cast<Kind>(k)) {
    case Kind::kHello:
    case Kind::kRequest:
    case Kind::kEnd:
    case Kind::kWelcome:
    case Kind::kFuse:
    case Kind::kSync:
    case Kind::kSynced:
      return true;
  }
  return false;
}

// What follows an opcode's fixed argument struct.
enum class Tail {
  kNone,      // anything (ignored by libfuse) or nothing
  kName,      // one NUL-terminated name
  kTwoNames,  // two (rename, symlink: name and target)
  kWrite,     // fuse_write_in.size bytes of data
  kXattr,     // a name, then fuse_setxattr_in.size bytes of value
  kForgets,   // fuse_batch_forget_in.count fuse_forget_one entries
};

struct OpShape {
  size_t fixed;  // bytes of the argument struct libfuse reads
  Tail tail;
};

// The operations roamfs serves (fusefs/fuse/ops.cc, and what libfuse itself
// answers: INIT, FORGET, BATCH_FORGET, INTERRUPT), with the bytes libfuse
// 3.14 reads of each. Anything else is ENOSYS, DESTROY included: a kernel
// sends it only to a fuseblk or virtiofs server, never to a remote session.
std::optional<OpShape> shape_of(uint32_t opcode, bool setxattr_ext) {
  switch (opcode) {
    case FUSE_INIT: return OpShape{offsetof(fuse_init_in, flags) + sizeof(uint32_t), Tail::kNone};
    case FUSE_FORGET: return OpShape{sizeof(fuse_forget_in), Tail::kNone};
    case FUSE_BATCH_FORGET: return OpShape{sizeof(fuse_batch_forget_in), Tail::kForgets};
    case FUSE_INTERRUPT: return OpShape{sizeof(fuse_interrupt_in), Tail::kNone};
    case FUSE_LOOKUP: return OpShape{0, Tail::kName};
    case FUSE_GETATTR: return OpShape{sizeof(fuse_getattr_in), Tail::kNone};
    case FUSE_SETATTR: return OpShape{sizeof(fuse_setattr_in), Tail::kNone};
    case FUSE_READLINK: return OpShape{0, Tail::kNone};
    case FUSE_SYMLINK: return OpShape{0, Tail::kTwoNames};
    case FUSE_MKNOD: return OpShape{sizeof(fuse_mknod_in), Tail::kName};
    case FUSE_MKDIR: return OpShape{sizeof(fuse_mkdir_in), Tail::kName};
    case FUSE_UNLINK: return OpShape{0, Tail::kName};
    case FUSE_RMDIR: return OpShape{0, Tail::kName};
    case FUSE_RENAME: return OpShape{sizeof(fuse_rename_in), Tail::kTwoNames};
    case FUSE_RENAME2: return OpShape{sizeof(fuse_rename2_in), Tail::kTwoNames};
    case FUSE_LINK: return OpShape{sizeof(fuse_link_in), Tail::kName};
    case FUSE_OPEN: return OpShape{sizeof(fuse_open_in), Tail::kNone};
    case FUSE_READ: return OpShape{sizeof(fuse_read_in), Tail::kNone};
    case FUSE_WRITE: return OpShape{sizeof(fuse_write_in), Tail::kWrite};
    case FUSE_STATFS: return OpShape{0, Tail::kNone};
    case FUSE_RELEASE: return OpShape{sizeof(fuse_release_in), Tail::kNone};
    case FUSE_FSYNC: return OpShape{sizeof(fuse_fsync_in), Tail::kNone};
    case FUSE_SETXATTR:
      return OpShape{setxattr_ext ? sizeof(fuse_setxattr_in) : FUSE_COMPAT_SETXATTR_IN_SIZE, Tail::kXattr};
    case FUSE_GETXATTR: return OpShape{sizeof(fuse_getxattr_in), Tail::kName};
    case FUSE_LISTXATTR: return OpShape{sizeof(fuse_getxattr_in), Tail::kNone};
    case FUSE_REMOVEXATTR: return OpShape{0, Tail::kName};
    case FUSE_OPENDIR: return OpShape{sizeof(fuse_open_in), Tail::kNone};
    case FUSE_READDIR: return OpShape{sizeof(fuse_read_in), Tail::kNone};
    case FUSE_READDIRPLUS: return OpShape{sizeof(fuse_read_in), Tail::kNone};
    case FUSE_RELEASEDIR: return OpShape{sizeof(fuse_release_in), Tail::kNone};
    case FUSE_FSYNCDIR: return OpShape{sizeof(fuse_fsync_in), Tail::kNone};
    case FUSE_CREATE: return OpShape{sizeof(fuse_create_in), Tail::kName};
    case FUSE_FALLOCATE: return OpShape{sizeof(fuse_fallocate_in), Tail::kNone};
    case FUSE_COPY_FILE_RANGE: return OpShape{sizeof(fuse_copy_file_range_in), Tail::kNone};
    default: return std::nullopt;
  }
}

// Whether `tail` holds `count` NUL-terminated strings; returns the bytes
// after the last one.
std::optional<std::string_view> skip_names(std::string_view tail, int count) {
  for (int i = 0; i < count; ++i) {
    size_t nul = tail.find('\0');
    if (nul == std::string_view::npos) return std::nullopt;
    tail.remove_prefix(nul + 1);
  }
  return tail;
}

template <typename T>
T read_struct(std::string_view args) {
  T v{};
  std::memcpy(&v, args.data(), sizeof v);
  return v;
}

Status check_tail(uint32_t opcode, Tail tail, std::string_view args, size_t fixed) {
  std::string_view rest = args.substr(fixed);
  switch (tail) {
    case Tail::kNone:
      return Status::ok();
    case Tail::kName:
    case Tail::kTwoNames:
      if (!skip_names(rest, tail == Tail::kName ? 1 : 2)) return bad("name not NUL-terminated");
      return Status::ok();
    case Tail::kWrite:
      if (read_struct<fuse_write_in>(args).size > rest.size()) return bad("WRITE data past the frame");
      return Status::ok();
    case Tail::kXattr: {
      auto value = skip_names(rest, 1);
      if (!value) return bad("xattr name not NUL-terminated");
      // `size` leads both layouts (the compat one and FUSE_SETXATTR_EXT's).
      if (read_struct<uint32_t>(args) > value->size())
        return bad("SETXATTR value past the frame");
      return Status::ok();
    }
    case Tail::kForgets:
      if (uint64_t{read_struct<fuse_batch_forget_in>(args).count} * sizeof(fuse_forget_one) > rest.size())
        return bad("BATCH_FORGET entries past the frame");
      return Status::ok();
  }
  return bad("opcode " + std::to_string(opcode));
}

// Offsets and sizes the kernel never sends: past MAX_LFS_FILESIZE (INT64_MAX),
// which libfuse would hand on as negative off_t, or whose end overflows it.
Status check_ranges(uint32_t opcode, std::string_view args) {
  constexpr uint64_t kMax = INT64_MAX;
  auto within = [](uint64_t off, uint64_t len) { return off <= kMax && len <= kMax - off; };
  bool ok = true;
  switch (opcode) {
    case FUSE_WRITE: {
      const auto w = read_struct<fuse_write_in>(args);
      ok = within(w.offset, w.size);
      break;
    }
    case FUSE_READ:
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: {
      const auto r = read_struct<fuse_read_in>(args);
      ok = within(r.offset, r.size);
      break;
    }
    case FUSE_FALLOCATE: {
      const auto f = read_struct<fuse_fallocate_in>(args);
      ok = within(f.offset, f.length);
      break;
    }
    case FUSE_SETATTR: {
      const auto a = read_struct<fuse_setattr_in>(args);
      ok = !(a.valid & FATTR_SIZE) || a.size <= kMax;
      break;
    }
    case FUSE_COPY_FILE_RANGE: {
      const auto c = read_struct<fuse_copy_file_range_in>(args);
      ok = within(c.off_in, c.len) && within(c.off_out, c.len);
      break;
    }
    default:
      break;
  }
  return ok ? Status::ok() : Status::error(EFBIG, "bad FUSE frame: offset or size past the largest file");
}

}  // namespace

std::string encode_meta(const Meta& m) {
  std::string out;
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(m.kind));
  out.append(m.text.substr(0, text_bound(m.kind)));
  return out;
}

Result<Meta> decode_meta(std::string_view frame) {
  if (frame.size() < 2 || static_cast<uint8_t>(frame[0]) != kVersion || !known_kind(static_cast<uint8_t>(frame[1])))
    return Status::error(EPROTO, "bad remote meta frame");
  Meta m{static_cast<Kind>(frame[1]), std::string(frame.substr(2))};
  if (m.text.size() > text_bound(m.kind)) return Status::error(EPROTO, "remote meta frame text too long");
  return m;
}

Status validate_request(std::string_view frame, bool setxattr_ext) {
  if (frame.size() < sizeof(fuse_in_header)) return bad("shorter than a header");
  if (frame.size() > kMaxFuseMessage) return bad("larger than " + std::to_string(kMaxFuseMessage) + " bytes");
  const auto h = read_struct<fuse_in_header>(frame);
  if (h.len != frame.size()) return bad("header length " + std::to_string(h.len) + " is not the frame's");
  if (h.unique == 0) return bad("request id 0");
  auto shape = shape_of(h.opcode, setxattr_ext);
  if (!shape) return Status::error(ENOSYS, "FUSE opcode " + std::to_string(h.opcode) + " is not served");
  std::string_view args = frame.substr(sizeof(fuse_in_header));
  if (args.size() < shape->fixed) return bad("opcode " + std::to_string(h.opcode) + " arguments truncated");
  ROAM_TRY(check_ranges(h.opcode, args));
  return check_tail(h.opcode, shape->tail, args, shape->fixed);
}

Status validate_reply(std::string_view frame) {
  if (frame.size() < sizeof(fuse_out_header)) return bad("reply shorter than a header");
  if (frame.size() > kMaxFuseMessage) return bad("reply too large");
  const auto h = read_struct<fuse_out_header>(frame);
  if (h.len != frame.size()) return bad("reply header length is not the frame's");
  if (h.unique == 0 && (h.error <= 0 || h.error >= FUSE_NOTIFY_CODE_MAX)) return bad("unknown notification");
  if (h.unique != 0 && (h.error > 0 || h.error < -4095)) return bad("reply error out of range");
  return Status::ok();
}

std::string error_reply(uint64_t unique, int err) {
  fuse_out_header h{};
  h.len = sizeof h;
  h.error = -err;
  h.unique = unique;
  return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

}  // namespace roam::proto::remote

namespace roam::proto::remote {

namespace {

// A handle a request uses: the handle, whether it is a directory's, and the
// inode it must have been opened on.
struct HandleUse {
  uint64_t fh;
  bool dir;
  uint64_t nodeid;
};
// The handles a request uses: none, one, or two (COPY_FILE_RANGE's source
// and destination).
struct HandleUses {
  std::array<HandleUse, 2> use{};
  size_t count = 0;
  void add(uint64_t fh, bool dir, uint64_t nodeid) { use[count++] = {fh, dir, nodeid}; }
};

HandleUses handles_used(const fuse_in_header& h, std::string_view args) {
  HandleUses u;
  const uint64_t node = h.nodeid;
  switch (h.opcode) {
    case FUSE_READ: u.add(read_struct<fuse_read_in>(args).fh, false, node); break;
    case FUSE_READDIR:
    case FUSE_READDIRPLUS: u.add(read_struct<fuse_read_in>(args).fh, true, node); break;
    case FUSE_WRITE: u.add(read_struct<fuse_write_in>(args).fh, false, node); break;
    case FUSE_RELEASE: u.add(read_struct<fuse_release_in>(args).fh, false, node); break;
    case FUSE_RELEASEDIR: u.add(read_struct<fuse_release_in>(args).fh, true, node); break;
    case FUSE_FSYNC: u.add(read_struct<fuse_fsync_in>(args).fh, false, node); break;
    case FUSE_FSYNCDIR: u.add(read_struct<fuse_fsync_in>(args).fh, true, node); break;
    case FUSE_FALLOCATE: u.add(read_struct<fuse_fallocate_in>(args).fh, false, node); break;
    case FUSE_COPY_FILE_RANGE: {
      auto in = read_struct<fuse_copy_file_range_in>(args);
      u.add(in.fh_in, false, node);
      u.add(in.fh_out, false, in.nodeid_out);
      break;
    }
    case FUSE_GETATTR: {
      auto in = read_struct<fuse_getattr_in>(args);
      if (in.getattr_flags & FUSE_GETATTR_FH) u.add(in.fh, false, node);
      break;
    }
    case FUSE_SETATTR: {
      auto in = read_struct<fuse_setattr_in>(args);
      if (in.valid & FATTR_FH) u.add(in.fh, false, node);
      break;
    }
    default: break;
  }
  return u;
}

bool answered(uint32_t opcode) {
  return opcode != FUSE_FORGET && opcode != FUSE_BATCH_FORGET && opcode != FUSE_INTERRUPT;
}

}  // namespace

int HandleGuard::admit(std::string_view request) {
  const auto h = read_struct<fuse_in_header>(request);
  if (!answered(h.opcode)) return 0;
  if (in_flight_.count(h.unique)) return EPROTO;
  const HandleUses uses = handles_used(h, request.substr(sizeof h));
  for (size_t i = 0; i < uses.count; ++i) {
    auto it = open_.find(uses.use[i].fh);
    if (it == open_.end() || it->second.dir != uses.use[i].dir || it->second.nodeid != uses.use[i].nodeid)
      return EBADF;
  }
  InFlight flight{h.opcode, h.nodeid, {}};
  if (h.opcode == FUSE_RELEASE || h.opcode == FUSE_RELEASEDIR) {
    auto it = open_.find(uses.use[0].fh);
    if (it->second.busy > 0) return EBUSY;
    open_.erase(it);  // no request may name it from now on
  } else {
    for (size_t i = 0; i < uses.count; ++i) {
      ++open_[uses.use[i].fh].busy;
      flight.fhs.push_back(uses.use[i].fh);
    }
  }
  in_flight_[h.unique] = std::move(flight);
  return 0;
}

void HandleGuard::replied(std::string_view reply) {
  const auto out = read_struct<fuse_out_header>(reply);
  auto it = in_flight_.find(out.unique);
  if (out.unique == 0 || it == in_flight_.end()) return;
  const InFlight done = std::move(it->second);
  in_flight_.erase(it);
  for (uint64_t fh : done.fhs)
    if (auto o = open_.find(fh); o != open_.end() && o->second.busy > 0) --o->second.busy;
  if (out.error != 0) return;
  std::string_view body = reply.substr(sizeof out);
  if ((done.opcode == FUSE_OPEN || done.opcode == FUSE_OPENDIR) && body.size() >= sizeof(fuse_open_out))
    open_[read_struct<fuse_open_out>(body).fh] = {done.opcode == FUSE_OPENDIR, done.nodeid};
  if (done.opcode == FUSE_CREATE && body.size() >= sizeof(fuse_entry_out) + sizeof(fuse_open_out)) {
    const auto entry = read_struct<fuse_entry_out>(body);
    open_[read_struct<fuse_open_out>(body.substr(sizeof entry)).fh] = {false, entry.nodeid};
  }
}

}  // namespace roam::proto::remote
