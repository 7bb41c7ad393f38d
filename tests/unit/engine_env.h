// A store in a temporary directory with an engine over it, for the unit tests
// of the modules above the engine (history, gc).
#pragma once

#include <memory>
#include <set>
#include <string>

#include "fusefs/engine/check.h"
#include "fusefs/engine/fs.h"
#include "fusefs/oplog/oplog.h"
#include "tests/unit/format_v1.h"
#include "tests/unit/helpers.h"

namespace roam::testing {

inline const Caller kTestCaller{1000, 1000, 4242, "tester"};

struct EngineEnv {
  TempDir tmp;
  std::unique_ptr<Store> store;
  std::unique_ptr<Fs> fs;

  EngineEnv() {
    REQUIRE_OK(Store::create(tmp.sub("store")));
    store = must(Store::open(tmp.sub("store"), {}));
    fs = std::make_unique<Fs>(*store);
  }
  std::string store_dir() const { return tmp.sub("store"); }
  // The newest op log record's seq (0 when the log is empty).
  uint64_t last_seq() {
    ReadTxn txn = must(store->begin_read());
    auto bounds = must(oplog::seq_bounds(txn));
    return bounds ? bounds->second : 0;
  }
  // Bytes in the data segment files.
  uint64_t segment_bytes() {
    uint64_t total = 0;
    for (const auto& [id, size] : store->segments().sizes()) total += size;
    return total;
  }
  // The whole-store check, data included, must find nothing; and the
  // per-inode index holds exactly the (inode, seq) pairs of the records in
  // the log, in order.
  void check() {
    CheckReport r = must(check_store(*store, true));
    INFO((r.problems.empty() ? "" : r.problems.front()));
    REQUIRE(r.ok());
    check_log_index();
  }
  void check_log_index() {
    ReadTxn txn = must(store->begin_read());
    std::set<std::pair<uint64_t, uint64_t>> want;
    REQUIRE_OK(oplog::scan(txn, {}, [&](const OpRecord& rec) {
      for (uint64_t ino : oplog::indexed_inodes(rec)) want.emplace(ino, rec.seq);
      return true;
    }));
    REQUIRE(read_log_by_ino(txn.raw(), txn.dbis().log_by_ino) == IndexEntries(want.begin(), want.end()));
  }
  // Closes the store and opens it again, read-only or writable; `as_v1`:
  // rewritten as format 1 in between (format_v1.h), which a writable open
  // upgrades.
  void reopen(bool read_only, bool as_v1 = false) {
    fs.reset();
    store.reset();
    if (as_v1) downgrade_to_v1(store_dir());
    Store::Options o;
    o.read_only = read_only;
    o.upgrade_batch = 50;  // several transactions
    store = must(Store::open(store_dir(), o));
    fs = std::make_unique<Fs>(*store);
  }
};

// Gives the disk's root to alice (uid/gid 1000, mode 0755), as root: the
// home of the tests of a desktop user's requests.
inline void chown_root_to_alice(EngineEnv& e) {
  SetattrArgs a;
  a.mask = kSetUid | kSetGid | kSetMode;
  a.uid = 1000;
  a.gid = 1000;
  a.mode = 0755;
  must(e.fs->setattr(Caller{0, 0, 1, "sh"}, kRootIno, a));
}

}  // namespace roam::testing
