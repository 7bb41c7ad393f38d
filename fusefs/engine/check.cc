#include "fusefs/engine/check.h"

#include <sys/stat.h>
#include <xxhash.h>

#include <map>
#include <unordered_map>

#include "fusefs/oplog/oplog.h"
#include "fusefs/store/codec.h"

namespace roam {

namespace {

struct Walk {
  const ReadTxn& txn;
  CheckReport& report;
  std::unordered_map<uint64_t, uint32_t> names;    // ino -> directory entries naming it
  std::unordered_map<uint64_t, uint32_t> subdirs;  // dir ino -> subdirectories
  std::map<uint64_t, uint64_t> blob_refs;          // blob -> references found
  std::unordered_map<uint64_t, std::vector<uint64_t>> blob_users;  // blob -> inodes (live extents)
  uint64_t live_bytes = 0;  // live_bytes_of() summed

  void problem(std::string s) { report.problems.push_back(std::move(s)); }
  std::string name_of(uint64_t ino) {
    auto p = txn.path_of(ino);
    return p ? *p : "inode " + std::to_string(ino);
  }
};

Status check_dirents(Walk& w) {
  return w.txn.scan_table(w.txn.dbis().dirents, {}, [&](std::string_view key, std::string_view value) -> Status {
    ++w.report.dirents;
    uint64_t parent = codec::get_be64(key);
    std::string name(key.substr(8));
    ROAM_ASSIGN(Dirent d, decode_dirent(value));
    ROAM_ASSIGN(auto inode, w.txn.get_inode(d.ino));
    if (!inode) {
      w.problem("entry '" + name + "' in " + w.name_of(parent) + " names missing inode " + std::to_string(d.ino));
      return Status::ok();
    }
    if ((inode->mode & S_IFMT) != d.type) w.problem("entry '" + name + "' in " + w.name_of(parent) + " has the wrong type");
    ++w.names[d.ino];
    if (S_ISDIR(inode->mode)) ++w.subdirs[parent];
    return Status::ok();
  });
}

Status check_inodes(Walk& w) {
  return w.txn.scan_table(w.txn.dbis().inodes, {}, [&](std::string_view key, std::string_view value) -> Status {
    ++w.report.inodes;
    uint64_t ino = codec::get_be64(key);
    ROAM_ASSIGN(Inode i, decode_inode(ino, value));
    w.live_bytes += live_bytes_of(i);
    if (i.nlink == 0) return Status::ok();  // dead: kept for history
    ++w.report.live_inodes;
    uint32_t expected = S_ISDIR(i.mode) ? 2 + w.subdirs[ino] : w.names[ino];
    if (ino != kRootIno && S_ISDIR(i.mode) && w.names[ino] != 1)
      w.problem(w.name_of(ino) + ": directory has " + std::to_string(w.names[ino]) + " names");
    if (i.nlink != expected)
      w.problem(w.name_of(ino) + ": link count " + std::to_string(i.nlink) + ", expected " + std::to_string(expected));
    if (ino != kRootIno && w.names[ino] == 0) w.problem("inode " + std::to_string(ino) + " is live but has no name");
    return Status::ok();
  });
}

// The live-data counter the quota is enforced against matches the inodes.
Status check_live_bytes(Walk& w) {
  ROAM_ASSIGN(auto stored, w.txn.raw().get(w.txn.dbis().meta, kMetaLiveBytes));
  if (!stored) return Status::ok();  // a store no writable open has counted yet
  ROAM_ASSIGN(uint64_t live, w.txn.live_bytes());
  if (live != w.live_bytes)
    w.problem("the live-data counter says " + std::to_string(live) + " bytes; the files hold " +
              std::to_string(w.live_bytes));
  return Status::ok();
}

Status check_extents(Walk& w) {
  uint64_t prev_ino = 0, prev_end = 0;
  return w.txn.scan_table(w.txn.dbis().extents, {}, [&](std::string_view key, std::string_view value) -> Status {
    ++w.report.extents;
    uint64_t ino = codec::get_be64(key);
    ROAM_ASSIGN(Extent x, decode_extent(codec::get_be64(key, 8), value));
    if (ino == prev_ino && x.file_offset < prev_end) w.problem(w.name_of(ino) + ": overlapping extents");
    prev_ino = ino, prev_end = x.end();
    ROAM_ASSIGN(auto inode, w.txn.get_inode(ino));
    if (!inode) {
      w.problem("extents of missing inode " + std::to_string(ino));
      return Status::ok();
    }
    if (x.end() > inode->size) w.problem(w.name_of(ino) + ": data beyond the end of the file");
    ++w.blob_refs[x.blob];
    w.blob_users[x.blob].push_back(ino);
    return Status::ok();
  });
}

Status count_undo_refs(Walk& w) {
  return oplog::scan(w.txn, {}, [&](const OpRecord& r) {
    ++w.report.log_records;
    for (const DataBefore& d : r.data_before)
      for (const Extent& x : d.extents) ++w.blob_refs[x.blob];
    return true;
  });
}

Status check_blobs(Walk& w, Store& store, bool verify_data) {
  std::string buf;
  ROAM_TRY(w.txn.scan_table(w.txn.dbis().blobs, {}, [&](std::string_view key, std::string_view value) -> Status {
    ++w.report.blobs;
    uint64_t id = codec::get_be64(key);
    ROAM_ASSIGN(Blob b, decode_blob(value));
    uint64_t found = w.blob_refs[id];
    if (found != b.refs)
      w.problem("blob " + std::to_string(id) + ": " + std::to_string(b.refs) + " references recorded, " +
                std::to_string(found) + " found");
    w.blob_refs.erase(id);
    // A blob nothing refers to holds no data anyone can read: GC keeps the
    // highest one's row only for its number, and compaction may remove its
    // segment (fusefs/gc/compact.cc, free_blobs).
    if (!verify_data || (b.refs == 0 && found == 0)) return Status::ok();
    buf.resize(b.length);
    Status s = store.segments().read({b.segment, b.offset}, buf.data(), b.length);
    if (s && XXH3_64bits(buf.data(), buf.size()) == b.xxh3) {
      w.report.bytes_verified += b.length;
      return Status::ok();
    }
    std::string users;
    for (uint64_t ino : w.blob_users[id]) users += " " + w.name_of(ino);
    w.problem("damaged data in blob " + std::to_string(id) + (s ? " (checksum mismatch)" : " (" + s.message() + ")") +
              (users.empty() ? " used only by history" : ", used by" + users));
    return Status::ok();
  }));
  for (auto [id, n] : w.blob_refs)
    w.problem(std::to_string(n) + " references to missing blob " + std::to_string(id));
  return Status::ok();
}

}  // namespace

Result<CheckReport> check_store(Store& store, bool verify_data) {
  CheckReport report;
  // A walk of every table: the snapshot (no lock held), with the latest changes.
  ROAM_TRY(store.checkpoint());
  ROAM_ASSIGN(ReadTxn txn, store.begin_snapshot());
  Walk w{txn, report, {}, {}, {}, {}, 0};
  ROAM_TRY(check_dirents(w));
  ROAM_TRY(check_inodes(w));
  ROAM_TRY(check_live_bytes(w));
  ROAM_TRY(check_extents(w));
  ROAM_TRY(count_undo_refs(w));
  ROAM_TRY(check_blobs(w, store, verify_data));
  return report;
}

}  // namespace roam
