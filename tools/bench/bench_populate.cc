// roam-bench-populate STORE OPS [SEED]: applies OPS logged operations to an
// unmounted store through the engine (no FUSE: a million operations in
// seconds), then prints what the op log costs per operation.
//
// The mix is a user's day: 45% small writes, 15% chmod/utimes, 15% creates,
// 10% renames, 10% unlinks, 5% mkdirs, over a tree of a few hundred
// directories. Used by tools/bench/bench-restore; not installed.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "fusefs/engine/fs.h"
#include "fusefs/oplog/oplog.h"

namespace {

using namespace roam;

struct Tree {
  std::vector<uint64_t> dirs{kRootIno};
  std::vector<std::pair<uint64_t, std::string>> files;  // (dir, name)
};

Status one_op(Fs& fs, const Caller& c, std::mt19937_64& rng, Tree& t, uint64_t i) {
  const uint64_t dir = t.dirs[rng() % t.dirs.size()];
  const unsigned pick = rng() % 100;
  if (pick < 5) {
    ROAM_ASSIGN(Inode d, fs.mkdir(c, dir, "d" + std::to_string(i), 0755));
    t.dirs.push_back(d.ino);
    return Status::ok();
  }
  if (pick < 20 || t.files.empty()) {
    const std::string name = "f" + std::to_string(i);
    ROAM_TRY(fs.mknod(c, dir, name, S_IFREG | 0644, 0, OpKind::kCreate).take_status());
    t.files.emplace_back(dir, name);
    return Status::ok();
  }
  const size_t idx = rng() % t.files.size();
  auto& [fdir, fname] = t.files[idx];
  ROAM_ASSIGN(Inode f, fs.lookup(fdir, fname));
  if (pick < 65) return fs.write(c, f.ino, (rng() % 64) * 4096, std::string(4096, 'w')).take_status();
  if (pick < 80) {
    SetattrArgs a;
    a.mask = kSetMode;
    a.mode = 0600 | (rng() % 2 ? 044 : 0);
    return fs.setattr(c, f.ino, a).take_status();
  }
  if (pick < 90) {
    const std::string to = "r" + std::to_string(i);
    ROAM_TRY(fs.rename(c, fdir, fname, dir, to, 0));
    fdir = dir, fname = to;
    return Status::ok();
  }
  ROAM_TRY(fs.unlink(c, fdir, fname));
  t.files[idx] = t.files.back();
  t.files.pop_back();
  return Status::ok();
}

uint64_t table_pages(const StoreTxn& txn, MDB_dbi dbi, uint64_t* entries = nullptr) {
  MDB_stat st{};
  mdb_stat(txn.raw().get(), dbi, &st);
  if (entries) *entries = st.ms_entries;
  return st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
}

// The index's pages. mdb_stat counts an MDB_DUPSORT table's own tree but not
// the trees of the keys with too many values for a sub-page, so count what
// is left: every page in use (the file's pages less the free list), less the
// other tables, LMDB's main and free-list trees and the two meta pages.
uint64_t index_pages(const StoreTxn& txn) {
  MDB_txn* t = txn.raw().get();
  MDB_envinfo info{};
  mdb_env_info(mdb_txn_env(t), &info);
  uint64_t free = 0;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(t, 0, &cur) == 0) {  // the free list: values are page lists, count first
    MDB_val k, v;
    while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) free += *static_cast<const size_t*>(v.mv_data);
    mdb_cursor_close(cur);
  }
  const Dbis& d = txn.dbis();
  uint64_t others = 2 + table_pages(txn, 0) + table_pages(txn, d.main);
  for (MDB_dbi dbi : {d.meta, d.inodes, d.dirents, d.links, d.xattrs, d.extents, d.blobs, d.oplog})
    others += table_pages(txn, dbi);
  return info.me_last_pgno + 1 - free - others;
}

// The sum of the op log's values (its chunks of records): what the encoding
// costs before LMDB's per-page overhead.
uint64_t log_value_bytes(const StoreTxn& txn) {
  uint64_t sum = 0;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open(txn.raw().get(), txn.dbis().oplog, &cur) != 0) return 0;
  MDB_val k, v;
  while (mdb_cursor_get(cur, &k, &v, MDB_NEXT) == 0) sum += v.mv_size;
  mdb_cursor_close(cur);
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"roam-bench-populate: apply logged operations to an unmounted store"};
  std::string dir;
  uint64_t ops = 0, seed = 1;
  app.add_option("store", dir)->required();
  app.add_option("ops", ops)->required();
  app.add_option("seed", seed);
  CLI11_PARSE(app, argc, argv);
  auto store = Store::open(dir, {});
  if (!store) return std::fprintf(stderr, "roam-bench-populate: %s\n", store.status().message().c_str()), 1;
  Fs fs(**store);
  const Caller c{1000, 1000, 1, "populate"};
  std::mt19937_64 rng(seed);
  Tree tree;
  for (uint64_t i = 0; i < ops; ++i) {
    if (Status s = one_op(fs, c, rng, tree, i); !s && s.err() != ENOENT && s.err() != EEXIST) {
      std::fprintf(stderr, "roam-bench-populate: op %llu: %s\n", static_cast<unsigned long long>(i), s.message().c_str());
      return 1;
    }
  }
  if (Status s = (*store)->sync(); !s) return std::fprintf(stderr, "roam-bench-populate: %s\n", s.message().c_str()), 1;
  auto txn = (*store)->begin_read();
  if (!txn) return 1;
  auto bounds = oplog::seq_bounds(*txn);
  if (!bounds) return std::fprintf(stderr, "roam-bench-populate: %s\n", bounds.status().message().c_str()), 1;
  const uint64_t records = *bounds ? (*bounds)->second - (*bounds)->first + 1 : 0;
  MDB_stat env{};
  mdb_env_stat(mdb_txn_env(txn->raw().get()), &env);
  const uint64_t log = table_pages(*txn, txn->dbis().oplog) * env.ms_psize;
  const uint64_t index = index_pages(*txn) * env.ms_psize;
  const uint64_t values = log_value_bytes(*txn);
  std::printf("records %llu log_bytes %llu index_bytes %llu value_bytes %llu bytes_per_op %.1f\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(log),
              static_cast<unsigned long long>(index), static_cast<unsigned long long>(values),
              records ? static_cast<double>(log + index) / records : 0.0);
  return 0;
}
