// Creating and opening a store: the store directory, FORMAT, the lock, the
// LMDB environment and its tables, and the upgrade of an older format
// (store.h, docs/store-format.md). Reading and writing through transactions
// is in store.cc.
#include "fusefs/store/store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <ctime>
#include <fstream>
#include <sstream>

#include "fusefs/store/codec.h"
#include "base/sys/files.h"

namespace roam {

namespace {

constexpr unsigned kMaxDbs = 16;
constexpr const char* kLockFile = "LOCK";
constexpr const char* kSegmentDir = "segments";

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// The store must be an empty directory or not exist yet.
Status prepare_empty_dir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) == 0) return Status::ok();
  if (errno != EEXIST) return errno_error("cannot create " + dir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return errno_error("cannot open " + dir);
  bool empty = true;
  while (dirent* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) empty = false;
  }
  ::closedir(d);
  if (!empty) return Status::error(EEXIST, dir + " is not empty; mkfs needs a new or empty directory");
  return Status::ok();
}

// Reads FORMAT and says clearly what is wrong with a store that is not ours;
// returns the store's format version.
Result<uint32_t> check_format(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) < 0) return errno_error("no store at " + dir);
  if (!S_ISDIR(st.st_mode)) return Status::error(ENOTDIR, dir + " is not a directory, so not a store");
  std::ifstream in(dir + "/" + kFormatFile);
  if (!in) {
    return Status::error(EINVAL, dir + " is not a roamdisk store (no " + kFormatFile +
                                     " file); create one with `roamctl mkfs " + dir + "`");
  }
  std::string magic, word;
  std::getline(in, magic);
  uint32_t version = 0;
  in >> word >> version;
  if (magic != kFormatMagic || word != "version" || version == 0)
    return Status::error(EINVAL, dir + " is not a roamdisk store (" + kFormatFile + " is foreign or damaged)");
  if (version > kFormatVersion) {
    return Status::error(EPROTO, dir + " was made by a newer roamdisk (store format " + std::to_string(version) +
                                     "); this build reads format " + std::to_string(kFormatVersion) +
                                     " — upgrade roamdisk");
  }
  return version;
}

std::string format_text(uint32_t version) {
  std::ostringstream format;
  format << kFormatMagic << "\nversion " << version << "\n";
  return format.str();
}

Status write_file_synced(const std::string& path, const std::string& content) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("cannot create " + path);
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return Status::error(err, "cannot write " + path + ": " + std::strerror(err));
  return Status::ok();
}

constexpr const char* kLogByIno = "log_by_ino";
constexpr unsigned kLogByInoFlags = MDB_DUPSORT | MDB_DUPFIXED;
constexpr const char* kLogInoV1 = "log_ino";  // format 1's index, key be64 ino ++ be64 seq

// Opens (with `create`: creates) the tables. `v1_read_only`: the store is
// format 1 and open read-only, so its index may still be `log_ino`.
Result<Dbis> open_dbis(lmdb::Txn& txn, bool create, bool v1_read_only) {
  unsigned f = create ? MDB_CREATE : 0;
  Dbis d{};
  struct {
    const char* name;
    MDB_dbi* dbi;
  } tables[] = {{"meta", &d.meta},     {"inodes", &d.inodes},   {"dirents", &d.dirents}, {"links", &d.links},
                {"xattrs", &d.xattrs}, {"extents", &d.extents}, {"blobs", &d.blobs},     {"oplog", &d.oplog}};
  auto open = [&](const char* name, unsigned flags) -> Result<MDB_dbi> {
    auto r = txn.open_dbi(name, flags);
    if (!r && r.status().err() == ENOENT) return Status::corrupt(std::string("table ") + name + " is missing");
    return r;
  };
  for (auto& t : tables) {
    ROAM_ASSIGN(*t.dbi, open(t.name, f));
  }
  ROAM_ASSIGN(d.main, txn.open_dbi(nullptr, 0));
  if (v1_read_only) {
    // Mid-upgrade both tables exist and only `log_ino` is complete; once the
    // upgrade has dropped it (FORMAT may not say 2 yet) the new one is.
    auto old = txn.open_dbi(kLogInoV1, 0);
    if (old) {
      d.v1_log_ino = *old;
      return d;
    }
    if (old.status().err() != ENOENT) return std::move(old).take_status();
  }
  ROAM_ASSIGN(d.log_by_ino, open(kLogByIno, f | kLogByInoFlags));
  ROAM_ASSIGN(unsigned flags, txn.dbi_flags(d.log_by_ino));
  if ((flags & kLogByInoFlags) != kLogByInoFlags)
    return Status::corrupt(std::string("table ") + kLogByIno + " is not a sorted-duplicates table");
  return d;
}

// Format 1 -> 2: copies the per-inode index from `log_ino` (key be64 ino ++
// be64 seq) into `log_by_ino` (key be64 ino, values be64 seq), then drops
// `log_ino`. At most `batch` entries per transaction, each resuming after the
// last entry already copied, so an interrupted upgrade (killed, ENOSPC)
// continues where it stopped; entries are appended in key order, so the new
// table's pages are full. Nothing to do once `log_ino` is gone.
Status upgrade_log_index(const lmdb::Env& env, size_t batch) {
  for (;;) {
    ROAM_ASSIGN(lmdb::Txn txn, lmdb::Txn::begin(env, false));
    auto from = txn.open_dbi(kLogInoV1, 0);
    if (!from) return from.status().err() == ENOENT ? Status::ok() : std::move(from).take_status();
    ROAM_ASSIGN(MDB_dbi to, txn.open_dbi(kLogByIno, MDB_CREATE | kLogByInoFlags));
    std::optional<uint64_t> last_ino;
    std::string start;
    {
      ROAM_ASSIGN(auto dst, lmdb::Cursor::open(txn, to));
      ROAM_ASSIGN(auto last, dst.seek_last());  // the last value of the last key
      if (last) {
        if (last->key.size() != 8 || last->value.size() != 8) return Status::corrupt("malformed log_by_ino entry");
        last_ino = codec::get_be64(last->key);
        start = codec::be64_pair(*last_ino, codec::get_be64(last->value) + 1);
      }
    }
    bool done = false;
    {  // LMDB frees a write transaction's cursors when it ends: close first
      ROAM_ASSIGN(auto src, lmdb::Cursor::open(txn, *from));
      ROAM_ASSIGN(auto e, start.empty() ? src.first() : src.seek(start));
      for (size_t n = 0; e && n < batch; ++n) {
        if (e->key.size() != 16) return Status::corrupt("malformed log_ino key");
        const std::string key(e->key.substr(0, 8)), seq(e->key.substr(8));
        const uint64_t ino = codec::get_be64(key);
        // A new inode sorts after every key so far; a further seq of the
        // same inode after its other values.
        ROAM_TRY(txn.put(to, key, seq, ino == last_ino ? MDB_APPENDDUP : MDB_APPEND));
        last_ino = ino;
        ROAM_ASSIGN(e, src.next());
      }
      done = !e;
    }
    if (done) ROAM_TRY(txn.drop(*from));
    ROAM_TRY(txn.commit());
    if (done) return Status::ok();
  }
}

// Replaces `path` with `content` atomically: a temporary file, fsync, rename,
// fsync of the directory.
Status replace_file_synced(const std::string& dir, const std::string& name, const std::string& content) {
  const std::string path = dir + "/" + name, tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_error("cannot create " + tmp);
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Status::error(err, "cannot write " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) < 0) return errno_error("cannot replace " + path);
  return sync_dir(dir);
}

// Brings a store of an older format up to kFormatVersion, under the writer
// lock. The LMDB changes are made durable before FORMAT says so: a crash in
// between leaves FORMAT at the old version, and the next writable open
// finishes the job (each step is idempotent).
Status upgrade_store(lmdb::Env& env, const std::string& dir, uint32_t version, size_t batch) {
  if (version < 2) ROAM_TRY(upgrade_log_index(env, std::max<size_t>(batch, 1)));
  // Format 3 adds the WAL (wal_format.h), which the open after this creates;
  // LMDB's tables are the same. Format 4 lets an op log record's caller name
  // a remote desktop (docs/oplog-format.md): the records already written
  // read as they are, and an older roamfs, which would misread the new ones,
  // refuses the store by its FORMAT. Format 5 adds the copy record (op kind
  // 16, extents that share the source's blobs), in the same way.
  ROAM_TRY(env.sync());
  return replace_file_synced(dir, kFormatFile, format_text(kFormatVersion));
}

// LMDB reads its tree through a memory map and trusts the meta page's last
// page number: a data.mdb cut short (by hand, or by a damaged filesystem under
// it) would make the first read SIGBUS. Refuse it with a sentence instead.
Status check_not_truncated(const lmdb::Env& env, const std::string& dir) {
  MDB_envinfo info{};
  MDB_stat st{};
  if (mdb_env_info(env.get(), &info) != 0 || mdb_env_stat(env.get(), &st) != 0) return Status::ok();
  struct stat fst {};
  const std::string path = dir + "/data.mdb";
  if (::stat(path.c_str(), &fst) < 0) return errno_error("stat " + path);
  const uint64_t needed = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  if (static_cast<uint64_t>(fst.st_size) < needed) {
    return Status::corrupt(path + " is truncated: " + std::to_string(fst.st_size) + " bytes, but its pages reach " +
                           std::to_string(needed));
  }
  return Status::ok();
}

// Where LMDB mapped `path` in this process (LMDB does not say unless
// MDB_FIXEDMAP is used), from /proc/self/maps.
std::pair<void*, size_t> find_mapping(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  for (std::string line; std::getline(maps, line);) {
    if (line.size() < path.size() || line.compare(line.size() - path.size(), path.size(), path) != 0) continue;
    unsigned long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) == 2)
      return {reinterpret_cast<void*>(start), end - start};
  }
  return {nullptr, 0};
}

// A read-only open sees LMDB's last checkpoint. After a crash the newest
// changes are only in the WAL: when no writer holds the store, replay them
// first with a writable open (which closes with a checkpoint), so that
// roamctl on an unmounted disk sees its latest state. Best effort: a store
// that cannot be opened for writing is read as it is.
void finish_recovery_for_reader(const std::string& dir, const Store::Options& options) {
  const std::string lock_path = dir + "/" + kLockFile;
  int fd = ::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);  // drops the lock: the writable open takes it again
  if (!free) return;  // a live writer (roamfs) has the changes; the reader sees its last checkpoint
  Store::Options writable = options;
  writable.read_only = false;
  (void)Store::open(dir, writable);
}

}  // namespace

// ---- Store ----

Status Store::create(const std::string& dir) {
  ROAM_TRY(prepare_empty_dir(dir));
  if (::mkdir((dir + "/" + kSegmentDir).c_str(), 0700) < 0) return errno_error("cannot create segment directory");
  {
    ROAM_ASSIGN(lmdb::Env env, lmdb::Env::open(dir, 0, size_t{1} << 30, kMaxDbs));
    ROAM_ASSIGN(lmdb::Txn txn, lmdb::Txn::begin(env, false));
    ROAM_ASSIGN(Dbis d, open_dbis(txn, true, false));
    const int64_t now = now_ns();
    Inode root;
    root.ino = kRootIno;
    root.mode = S_IFDIR | 0755;
    root.uid = ::getuid();
    root.gid = ::getgid();
    root.nlink = 2;
    root.atime = root.mtime = root.ctime = Timespec::from_ns(now);
    root.parent = kRootIno;
    ROAM_TRY(txn.put(d.inodes, inode_key(kRootIno), encode(root)));
    uint64_t uuid[2] = {};
    if (::getrandom(uuid, sizeof uuid, 0) != sizeof uuid) return errno_error("getrandom");
    ROAM_TRY(txn.put(d.meta, kMetaUuid, std::string_view(reinterpret_cast<const char*>(uuid), sizeof uuid)));
    ROAM_TRY(txn.put(d.meta, kMetaCreated, codec::be64(static_cast<uint64_t>(now))));
    ROAM_TRY(txn.put(d.meta, kMetaLiveBytes, codec::be64(0)));  // nothing yet: no count at the first open
    ROAM_TRY(txn.commit());
    ROAM_TRY(env.sync());
  }
  // FORMAT last: a store without it is an unfinished mkfs, never half-valid.
  ROAM_TRY(write_file_synced(dir + "/" + kFormatFile, format_text(kFormatVersion)));
  // The names, too: the store's files in it, and the store in its parent.
  ROAM_TRY(sync_dir(dir + "/" + kSegmentDir));
  ROAM_TRY(sync_dir(dir));
  return sync_dir(dir + "/..");
}

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, Options options) {
  ROAM_ASSIGN(uint32_t version, check_format(dir));
  if (options.read_only && options.replay_wal_for_reader && version >= 3) finish_recovery_for_reader(dir, options);
  std::unique_ptr<Store> s(new Store());
  s->dir_ = dir;
  s->read_only_ = options.read_only;
  if (options.io) {
    s->io_ = options.io;
  } else {
    s->owned_io_ = std::make_unique<PosixFileIo>();
    s->io_ = s->owned_io_.get();
  }
  if (!options.read_only) {
    std::string lock_path = dir + "/" + kLockFile;
    s->lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lock_fd_ < 0) return errno_error("cannot open " + lock_path);
    if (::flock(s->lock_fd_, LOCK_EX | LOCK_NB) < 0) {
      if (errno == EWOULDBLOCK)
        return Status::error(EBUSY, dir + " is in use by another roamfs (or roamctl); unmount it first");
      return errno_error("cannot lock " + lock_path);
    }
  }
  // Writable: synced commits, which only checkpoints make (store.h).
  unsigned flags = options.read_only ? MDB_RDONLY : 0;
  ROAM_ASSIGN(s->env_, lmdb::Env::open(dir, flags, options.map_size, kMaxDbs));
  ROAM_TRY(check_not_truncated(s->env_, dir));
  if (!options.read_only && version < kFormatVersion) {
    ROAM_ASSIGN(version, check_format(dir));  // now under the lock: another writer may have upgraded it
    if (version < kFormatVersion) {
      ROAM_TRY(upgrade_store(s->env_, dir, version, options.upgrade_batch)
                   .with_context("upgrading " + dir + " from store format " + std::to_string(version)));
      version = kFormatVersion;
    }
  }
  {
    ROAM_ASSIGN(lmdb::Txn txn, lmdb::Txn::begin(s->env_, options.read_only));
    ROAM_ASSIGN(s->dbis_, open_dbis(txn, false, options.read_only && version < 2));
    ROAM_TRY(txn.commit());  // keeps the dbi handles open for the environment
  }
  char real[PATH_MAX];
  if (::realpath((dir + "/data.mdb").c_str(), real)) std::tie(s->map_addr_, s->map_len_) = find_mapping(real);
  ROAM_ASSIGN(s->segments_, Segments::open(dir + "/" + kSegmentDir, *s->io_, options.read_only));
  if (!options.read_only) {
    ROAM_TRY(s->open_wal());
    s->root_ = std::make_unique<RootTxn>(s->env_);
    ROAM_TRY(s->recover().with_context("recovering " + dir));
  }
  ROAM_TRY(s->load_counters());
  if (!options.read_only) ROAM_TRY(s->count_live_bytes_once());
  return s;
}

Status Store::open_wal() {
  ROAM_ASSIGN(ReadTxn txn, begin_snapshot());
  ROAM_ASSIGN(auto uuid, txn.raw().get(dbis_.meta, kMetaUuid));
  if (!uuid || uuid->size() != 16) return Status::corrupt("the store has no uuid");
  ROAM_ASSIGN(wal_, Wal::open(dir_, *io_, *uuid));
  return Status::ok();
}

Store::~Store() {
  if (root_ && root_->open()) {
    // A clean close: the next open has nothing to replay.
    if (Status s = checkpoint(); !s) std::fprintf(stderr, "roamfs: %s: last checkpoint: %s\n", dir_.c_str(), s.message().c_str());
  }
  root_.reset();  // before the environment closes
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

Status Store::count_live_bytes_once() {
  {
    ROAM_ASSIGN(ReadTxn txn, begin_read());
    ROAM_ASSIGN(auto have, txn.raw().get(dbis_.meta, kMetaLiveBytes));
    if (have) return Status::ok();
  }
  ROAM_ASSIGN(WriteTxn txn, begin_write());
  uint64_t live = 0;
  ROAM_TRY(txn.scan_table(dbis_.inodes, {}, [&](std::string_view key, std::string_view value) -> Status {
    if (key.size() != 8) return Status::corrupt("malformed inode key");
    ROAM_ASSIGN(Inode inode, decode_inode(codec::get_be64(key), value));
    live += live_bytes_of(inode);
    return Status::ok();
  }));
  ROAM_TRY(txn.put(dbis_.meta, kMetaLiveBytes, codec::be64(live)));
  ROAM_TRY(txn.commit());
  live_bytes_.store(live, std::memory_order_relaxed);
  return Status::ok();
}

Status Store::load_counters() {
  ROAM_ASSIGN(ReadTxn txn, begin_read());
  // One past the last key of a table keyed by be64 numbers (1 when empty).
  auto next_after_last = [&](MDB_dbi dbi) -> Result<uint64_t> {
    ROAM_ASSIGN(auto cur, lmdb::Cursor::open(txn.raw(), dbi));  // a write's cursors end before its txn
    ROAM_ASSIGN(auto last, cur.seek_last());
    if (!last) return uint64_t{1};
    if (last->key.size() != 8) return Status::corrupt("malformed key in a numbered table");
    return codec::get_be64(last->key) + 1;
  };
  ROAM_ASSIGN(uint64_t next_ino, next_after_last(dbis_.inodes));
  ROAM_ASSIGN(counters_.next_blob, next_after_last(dbis_.blobs));
  counters_.next_ino = std::max(next_ino, kRootIno + 1);
  ROAM_ASSIGN(uint64_t quota, txn.quota_bytes());
  quota_bytes_.store(quota, std::memory_order_relaxed);
  ROAM_ASSIGN(uint64_t live, txn.live_bytes());
  live_bytes_.store(live, std::memory_order_relaxed);
  ROAM_ASSIGN(auto root, txn.get_inode(kRootIno));
  if (!root || !S_ISDIR(root->mode)) return Status::corrupt("the root directory is missing");
  return Status::ok();
}

}  // namespace roam
