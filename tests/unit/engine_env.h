// A store in a temporary directory with an engine over it, for the unit tests
// of the modules above the engine (history, gc).
#pragma once

#include <memory>
#include <string>

#include "fusefs/engine/check.h"
#include "fusefs/engine/fs.h"
#include "fusefs/oplog/oplog.h"
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
  // The whole-store check, data included, must find nothing.
  void check() {
    CheckReport r = must(check_store(*store, true));
    INFO((r.problems.empty() ? "" : r.problems.front()));
    REQUIRE(r.ok());
  }
};

}  // namespace roam::testing
