#include "fusefs/fuse/ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>

#include "fusefs/fuse/op_support.h"

namespace roam {

namespace {

// What stat reports: st_blocks counts 512-byte units (POSIX, whatever the
// filesystem's own blocks); the preferred I/O size is a page.
constexpr blkcnt_t kStatBlockUnit = 512;
constexpr blksize_t kPreferredIoSize = 4096;
// Inode numbers are never reused, so every inode is of the first generation.
constexpr uint64_t kGeneration = 1;

// What op_init asks of the kernel.
// WRITE and readahead requests of up to 1 MiB, the kernel's largest (256
// pages, FUSE_MAX_MAX_PAGES): the writeback cache merges small writes into
// requests this large, and fewer requests mean fewer round trips.
constexpr unsigned kMaxWriteBytes = 1 << 20;
constexpr unsigned kMaxReadaheadBytes = 1 << 20;
// Background requests (readahead, writeback) the kernel keeps in flight: more
// than its default of 12, so that readahead and writeback are not held to 12
// at a time; it counts itself congested at 3/4 of that, its own default
// ratio (12 and 9).
constexpr unsigned kMaxBackground = 64;
constexpr unsigned kCongestionThreshold = kMaxBackground * 3 / 4;
// Timestamps are kept to the nanosecond.
constexpr unsigned kTimeGranularityNs = 1;

// Process names are read again after this long (a process may exec, a pid be
// reused), and forgotten all at once past this many pids (a bound on memory).
constexpr auto kCommTtl = std::chrono::seconds(1);
constexpr size_t kCommCacheMaxPids = 4096;

}  // namespace

// The one place where an engine Status becomes an errno.
void reply_status(fuse_req_t req, const Status& s) {
  if (s.err() == EIO) {  // checksum mismatches and store damage must be seen
    std::fprintf(stderr, "roamfs: I/O error: %s\n", s.message().c_str());
    syslog(LOG_ERR, "roamfs: I/O error: %s", s.message().c_str());
  }
  fuse_reply_err(req, s.err());
}

Caller caller_of(fuse_req_t req) {
  const fuse_ctx* c = fuse_req_ctx(req);
  Caller caller{c->uid, c->gid, static_cast<uint32_t>(c->pid), {}};
  caller.comm = ctx(req).comms.comm_of(caller.pid);
  caller.desktop = ctx(req).desktop;
  return caller;
}

struct stat to_stat(const Inode& i) {
  struct stat st {};
  st.st_ino = i.ino;
  st.st_mode = i.mode;
  st.st_nlink = i.nlink;
  st.st_uid = i.uid;
  st.st_gid = i.gid;
  st.st_rdev = i.rdev;
  st.st_size = static_cast<off_t>(i.size);
  st.st_blksize = kPreferredIoSize;
  st.st_blocks = static_cast<blkcnt_t>((i.size + kStatBlockUnit - 1) / kStatBlockUnit);
  st.st_atim = {i.atime.sec, i.atime.nsec};
  st.st_mtim = {i.mtime.sec, i.mtime.nsec};
  st.st_ctim = {i.ctime.sec, i.ctime.nsec};
  return st;
}

fuse_entry_param to_entry(fuse_req_t req, const Inode& i) {
  fuse_entry_param e{};
  e.ino = i.ino;
  e.generation = kGeneration;
  e.attr = to_stat(i);
  e.attr_timeout = ctx(req).options.attr_timeout;
  e.entry_timeout = ctx(req).options.entry_timeout;
  return e;
}

void reply_attr(fuse_req_t req, const Result<Inode>& r) {
  if (!r) return reply_status(req, r.status());
  struct stat st = to_stat(*r);
  fuse_reply_attr(req, &st, ctx(req).options.attr_timeout);
}

namespace {

// The creating process's umask, which the kernel sends with create, mknod
// and mkdir (and no longer applies itself under FUSE_CAP_DONT_MASK).
uint32_t umask_of(fuse_req_t req) { return fuse_req_ctx(req)->umask; }

void reply_entry(fuse_req_t req, const Result<Inode>& r) {
  if (!r) return reply_status(req, r.status());
  fuse_entry_param e = to_entry(req, *r);
  fuse_reply_entry(req, &e);
}

// An open file remembers who opened it: with the writeback cache, WRITE
// requests come from the kernel's flusher, so the opener is the honest answer
// to "who wrote this".
// Registered in OpenFiles for its lifetime (open/create until release).
struct FileHandle {
  FileHandle(Caller who, uint64_t ino, OpenFiles& open) : opener(std::move(who)), ino(ino), open_files(open) {
    open_files.opened(ino);
  }
  ~FileHandle() { open_files.closed(ino); }
  FileHandle(const FileHandle&) = delete;
  FileHandle& operator=(const FileHandle&) = delete;

  Caller opener;
  uint64_t ino;
  OpenFiles& open_files;
};

FileHandle* file_of(fuse_file_info* fi) { return reinterpret_cast<FileHandle*>(fi->fh); }

void op_init(void* userdata, fuse_conn_info* conn) {
  auto& c = *static_cast<FuseContext*>(userdata);
  if (c.options.writeback_cache && !c.options.read_only && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    c.fs.set_kernel_owns_write_times(true);
  }
  conn->want |= conn->capable & (FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_ASYNC_READ);
  conn->want |= conn->capable & FUSE_CAP_READDIRPLUS;
  // File handles that outlive the kernel's caches and a remount: the kernel
  // resolves them by looking up "." and ".." of inode numbers (Fs::lookup),
  // which never change and are never reused (hence one generation).
  conn->want |= conn->capable & FUSE_CAP_EXPORT_SUPPORT;
  if (c.options.posix_acl && (conn->capable & FUSE_CAP_POSIX_ACL))
    conn->want |= FUSE_CAP_POSIX_ACL | (conn->capable & FUSE_CAP_DONT_MASK);
  conn->want &= ~static_cast<unsigned>(FUSE_CAP_READDIRPLUS_AUTO);
  conn->max_write = kMaxWriteBytes;
  conn->max_readahead = kMaxReadaheadBytes;
  conn->max_background = kMaxBackground;
  conn->congestion_threshold = kCongestionThreshold;
  conn->time_gran = kTimeGranularityNs;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  auto r = ctx(req).fs.lookup(parent, name);
  if (!r && r.status().err() == ENOENT) {
    fuse_entry_param e{};  // a negative entry: the kernel caches the absence
    e.entry_timeout = ctx(req).options.negative_timeout;
    fuse_reply_entry(req, &e);
    return;
  }
  reply_entry(req, r);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) { reply_attr(req, ctx(req).fs.getattr(ino)); }

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  auto r = ctx(req).fs.readlink(ino);
  if (!r) return reply_status(req, r.status());
  fuse_reply_readlink(req, r->c_str());
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  reply_entry(req, ctx(req).fs.mknod(caller_of(req), parent, name, mode, rdev, OpKind::kMknod, umask_of(req)));
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  reply_entry(req, ctx(req).fs.mkdir(caller_of(req), parent, name, mode, umask_of(req)));
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, ctx(req).fs.unlink(caller_of(req), parent, name));
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  reply_status(req, ctx(req).fs.rmdir(caller_of(req), parent, name));
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  reply_entry(req, ctx(req).fs.symlink(caller_of(req), parent, name, target));
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
               unsigned flags) {
  reply_status(req, ctx(req).fs.rename(caller_of(req), parent, name, new_parent, new_name, flags));
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  reply_entry(req, ctx(req).fs.link(caller_of(req), ino, new_parent, new_name));
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = ctx(req).fs.getattr(ino);
  if (!r) return reply_status(req, r.status());
  if (S_ISDIR(r->mode)) return static_cast<void>(fuse_reply_err(req, EISDIR));
  if ((fi->flags & O_TRUNC) && ctx(req).options.read_only) return static_cast<void>(fuse_reply_err(req, EROFS));
  Caller caller = caller_of(req);
  // libfuse asks for FUSE_CAP_ATOMIC_O_TRUNC by default, so the kernel sends
  // no SETATTR for open(O_TRUNC): the truncation is ours to do (and log), and
  // so is taking away privileges when the kernel says so (the opener lacks
  // CAP_FSETID; FUSE_HANDLE_KILLPRIV_V2).
  const bool kill = (fi->flags & O_TRUNC) && DeviceIo::open_kills(ino);
  const bool outside = kill && !caller_in_group(req, r->gid);
  if ((fi->flags & O_TRUNC) && S_ISREG(r->mode) && (r->size > 0 || (kill && has_killable_mode(r->mode, outside)))) {
    SetattrArgs a;
    a.mask = kSetSize;
    a.size = 0;
    a.kill_privs = kill;
    a.outside_group = outside;
    auto t = ctx(req).fs.setattr(caller, ino, a);
    if (!t) return reply_status(req, t.status());
    if (t->mode != r->mode) forget_cached_mode(req, ino);
  }
  fi->fh = reinterpret_cast<uint64_t>(new FileHandle(std::move(caller), ino, ctx(req).open_files));
  fi->keep_cache = 1;  // only roamfs changes the data, so cached pages stay valid
  if (fuse_reply_open(req, fi) == -ENOENT) delete file_of(fi);  // the opener was interrupted
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  Caller caller = caller_of(req);
  // open(O_TMPFILE) reaches here as a CREATE (DeviceIo), with the name "/".
  auto r = DeviceIo::creating_tmpfile(parent)
               ? ctx(req).fs.tmpfile(caller, parent, mode, umask_of(req))
               : ctx(req).fs.mknod(caller, parent, name, mode, 0, OpKind::kCreate, umask_of(req));
  if (!r) return reply_status(req, r.status());
  fi->fh = reinterpret_cast<uint64_t>(new FileHandle(std::move(caller), r->ino, ctx(req).open_files));
  fi->keep_cache = 1;
  fuse_entry_param e = to_entry(req, *r);
  if (fuse_reply_create(req, &e, fi) == -ENOENT) delete file_of(fi);
}

void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  std::unique_ptr<char[]> buf(new char[size]);
  auto r = ctx(req).fs.read(ino, static_cast<uint64_t>(off), size, buf.get());
  if (!r) return reply_status(req, r.status());
  fuse_reply_buf(req, buf.get(), *r);
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  // Attributed to the opener (see FileHandle); a write without a handle
  // (never sent by current kernels) falls back to the request's context.
  Caller who = fi && fi->fh ? file_of(fi)->opener : caller_of(req);
  // A write the kernel sends itself (not through the page cache) by a process
  // without CAP_FSETID takes away privileges (FUSE_HANDLE_KILLPRIV_V2).
  const bool kill = DeviceIo::write_kills(ino);
  const bool outside = kill && outside_group_of(req, ino);
  bool mode_changed = false;
  auto r = ctx(req).fs.write(who, ino, static_cast<uint64_t>(off), std::string_view(buf, size), kill, &mode_changed,
                             outside);
  if (!r) return reply_status(req, r.status());
  if (mode_changed) forget_cached_mode(req, ino);
  if (fi && !fi->writepage && (fi->flags & O_DIRECT)) forget_cached_pages(req, ino, off, size);
  fuse_reply_write(req, size);
}

// Shares the source's blobs (Fs::copy_range). Attributed, like a write, to
// the destination's opener. The kernel has written back both ranges' dirty
// pages before sending it, and drops its cached pages of the destination's
// range after the reply.
void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in, fuse_file_info*, fuse_ino_t ino_out,
                        off_t off_out, fuse_file_info* fi_out, size_t len, int flags) {
  if (flags != 0 || off_in < 0 || off_out < 0) return static_cast<void>(fuse_reply_err(req, EINVAL));
  Caller who = fi_out && fi_out->fh ? file_of(fi_out)->opener : caller_of(req);
  CopyRange range{ino_in, static_cast<uint64_t>(off_in), ino_out, static_cast<uint64_t>(off_out), len};
  auto r = ctx(req).fs.copy_range(who, range);
  if (!r) return reply_status(req, r.status());
  fuse_reply_write(req, *r);
}

void op_release(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete file_of(fi);
  fuse_reply_err(req, 0);
}

void op_fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { reply_status(req, ctx(req).fs.sync()); }

void op_statfs(fuse_req_t req, fuse_ino_t) {
  auto r = ctx(req).fs.statfs();
  if (!r) return reply_status(req, r.status());
  fuse_reply_statfs(req, &*r);
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  const bool kill_sgid = DeviceIo::setxattr_kills_sgid(ino);
  reply_status(req, ctx(req).fs.setxattr(caller_of(req), ino, name, std::string_view(value, size), flags, kill_sgid));
}

}  // namespace

void reply_xattr_bytes(fuse_req_t req, const std::string& bytes, size_t size) {
  if (size == 0) return static_cast<void>(fuse_reply_xattr(req, bytes.size()));
  if (bytes.size() > size) return static_cast<void>(fuse_reply_err(req, ERANGE));
  fuse_reply_buf(req, bytes.data(), bytes.size());
}

namespace {

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  auto r = ctx(req).fs.getxattr(ino, name);
  if (!r) return reply_status(req, r.status());
  reply_xattr_bytes(req, *r, size);
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto r = ctx(req).fs.listxattr(ino);
  if (!r) return reply_status(req, r.status());
  std::string list;
  for (const auto& name : *r) list.append(name).push_back('\0');
  reply_xattr_bytes(req, list, size);
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  reply_status(req, ctx(req).fs.removexattr(caller_of(req), ino, name));
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info*) {
  if (off < 0 || len <= 0) return static_cast<void>(fuse_reply_err(req, EINVAL));
  reply_status(req, ctx(req).fs.fallocate(caller_of(req), ino, mode, static_cast<uint64_t>(off),
                                          static_cast<uint64_t>(len)));
}

fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.releasedir = op_releasedir;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.create = op_create;
  ops.fallocate = op_fallocate;
  ops.copy_file_range = op_copy_file_range;
  return ops;
}

}  // namespace

std::string CommCache::comm_of(uint32_t pid) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(pid);
    if (it != entries_.end() && (told_only_ || now - it->second.read_at < kCommTtl)) return it->second.comm;
  }
  if (told_only_) return {};
  std::string comm;
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::getline(in, comm);
  tell(pid, comm);
  return comm;
}

void CommCache::tell(uint32_t pid, std::string comm) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (entries_.size() > kCommCacheMaxPids) entries_.clear();
  entries_[pid] = {std::move(comm), now};
}

namespace {

// Threads of the multi-threaded loop. Requests wait on fsync and on LMDB's
// one writer, so more threads than CPUs; measured on 2 vCPUs, 16/8 and 4/2
// made no difference, and one idle thread lost: libfuse then starts and
// stops threads all the time (docs/performance.md).
constexpr unsigned kMaxLoopThreads = 16;
constexpr unsigned kIdleLoopThreads = 8;

}  // namespace

int serve_session(fuse_session* se, bool single_thread) {
  if (single_thread) return fuse_session_loop(se);
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, kMaxLoopThreads);
  fuse_loop_cfg_set_idle_threads(cfg, kIdleLoopThreads);
  const int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  return rc;
}

const fuse_lowlevel_ops& roamfs_ops() {
  static const fuse_lowlevel_ops ops = make_ops();
  return ops;
}

}  // namespace roam
