// fusefs/history/time_travel: the inode numbers of past views, the table of
// views, and the moments a listing of .history offers.
#include <catch2/catch.hpp>

#include "base/timefmt.h"
#include "fusefs/gc/gc.h"
#include "fusefs/gc/retention.h"
#include "fusefs/history/moment.h"
#include "fusefs/history/time_travel.h"
#include "tests/unit/engine_env.h"

using namespace roam;
using namespace roam::time_travel;
using roam::testing::must;

namespace {

constexpr int64_t kMinute = int64_t{60} * 1'000'000'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr int64_t kDay = 24 * kHour;

}  // namespace

TEST_CASE("past inode numbers have bit 63, a view index and the past inode, and meet no live number") {
  const uint64_t ino = must(encode_ino(7, 12345));
  CHECK(is_history_ino(ino));
  CHECK(decode_ino(ino).view == 7);
  CHECK(decode_ino(ino).ino == 12345);
  const uint64_t last = must(encode_ino(kMaxViews, kPastInoMask));
  CHECK(decode_ino(last).view == kMaxViews);
  CHECK(decode_ino(last).ino == kPastInoMask);
  CHECK(decode_ino(kDirIno).view == 0);
  CHECK(decode_ino(kDirIno).ino == 0);
  CHECK_FALSE(is_history_ino(kRootIno));
  CHECK_FALSE(is_history_ino(kPastInoMask));
  CHECK(encode_ino(1, kPastInoMask + 1).status().err() == EOVERFLOW);
}

TEST_CASE("one view index per seq, handed out in order, unknown indexes are stale") {
  ViewTable views;
  CHECK(must(views.index_of(50)) == 1);
  CHECK(must(views.index_of(9)) == 2);
  CHECK(must(views.index_of(50)) == 1);
  CHECK(must(views.seq_of(1)) == 50);
  CHECK(must(views.seq_of(2)) == 9);
  CHECK(views.seq_of(0).status().err() == ESTALE);
  CHECK(views.seq_of(3).status().err() == ESTALE);
}

TEST_CASE("names in .history: any TIME the disk holds; others are refused as --at refuses them") {
  roam::testing::EngineEnv env;
  must(env.fs->mkdir(roam::testing::kTestCaller, kRootIno, "d", 0755));
  ReadTxn txn = must(env.store->begin_read());
  const int64_t now = wall_clock_ns();
  CHECK(must(moment_named(txn, "now", now)) == env.last_seq());
  CHECK(must(moment_named(txn, "@" + std::to_string(now / 1'000'000'000 + 1), now + 2'000'000'000)) == env.last_seq());
  CHECK(moment_named(txn, "-1h", now).status().err() == ERANGE);  // before the disk was made
  CHECK(moment_named(txn, "@" + std::to_string(now / 1'000'000'000 + 60), now).status().err() == ERANGE);
  CHECK(moment_named(txn, "yesterday-ish", now).status().err() == EINVAL);
}

TEST_CASE("ISO times and @EPOCH name fixed moments; relative names and non-times do not") {
  CHECK(names_fixed_moment("2026-12-04T23:00Z"));
  CHECK(names_fixed_moment("2026-12-04T23:00"));
  CHECK(names_fixed_moment("@1796447845.5"));
  CHECK_FALSE(names_fixed_moment("-2h"));
  CHECK_FALSE(names_fixed_moment("now"));
  CHECK_FALSE(names_fixed_moment("thesis.odt"));
}

TEST_CASE("listing .history offers 10 minutes, 24 hours, then days, back to the disk's creation") {
  roam::testing::EngineEnv env;
  must(env.fs->mkdir(roam::testing::kTestCaller, kRootIno, "d", 0755));
  ReadTxn txn = must(env.store->begin_read());
  const int64_t created = must(store_created_ns(txn));
  // "Now" three days on, half past an hour: the ten minutes hold no full hour.
  const int64_t now = (created + 3 * kDay) / kHour * kHour + 30 * kMinute + 5'000'000'000;
  const auto listed = must(listed_moments(txn, now));
  REQUIRE(listed.size() > static_cast<size_t>(kListedMinutes + kListedHours));
  std::vector<int64_t> at;
  for (const auto& [name, seq] : listed) {
    INFO(name);
    CHECK(name.size() == std::string("2026-12-04T23:00Z").size());
    CHECK(must(moment_named(txn, name, now)) == seq);
    at.push_back(must(parse_time(name, now)));
  }
  const size_t n = at.size();
  for (size_t i = n - kListedMinutes + 1; i < n; ++i) CHECK(at[i] - at[i - 1] == kMinute);
  const size_t hours_from = n - kListedMinutes - kListedHours;
  for (size_t i = hours_from + 1; i < n - kListedMinutes; ++i) CHECK(at[i] - at[i - 1] == kHour);
  for (size_t i = 1; i < hours_from; ++i) CHECK(at[i] - at[i - 1] == kDay);
  CHECK(at.front() >= created);
  CHECK(at.front() - kDay < created);  // the midnight before is before the disk
  CHECK(at.back() == now - now % kMinute);
}

TEST_CASE("after GC drops records, a time before the oldest kept one is refused, not taken for a later state") {
  roam::testing::EngineEnv env;
  const Caller c = roam::testing::kTestCaller;
  must(env.fs->mkdir(c, kRootIno, "a", 0755));
  must(env.fs->mkdir(c, kRootIno, "b", 0755));
  must(env.fs->mkdir(c, kRootIno, "kept", 0755));
  const uint64_t kept = env.last_seq();
  int64_t ts_a = 0, ts_kept = 0;
  {
    ReadTxn txn = must(env.store->begin_read());
    ts_a = must(oplog::get(txn, 1))->ts_ns;
    ts_kept = must(oplog::get(txn, kept))->ts_ns;
    // Before GC the moment of a's mkdir is the state after it.
    CHECK(must(moment_at(txn, ts_a, ts_kept)).seq == 1);
  }
  {
    WriteTxn txn = must(env.store->begin_write());
    REQUIRE_OK(save_retention(txn, {kHour, 0}));
    REQUIRE_OK(txn.commit());
  }
  GcOptions o;
  o.now_ns = ts_kept + kHour;  // a and b age out, "kept" stays
  REQUIRE(must(collect_garbage(*env.store, o)).records_dropped == kept - 1);
  ReadTxn txn = must(env.store->begin_read());
  // Record 1 is gone: the state at its time (a without b) cannot be rebuilt.
  CHECK(moment_at(txn, ts_a, o.now_ns).status().err() == ERANGE);
  CHECK(must(moment_at(txn, ts_kept - 1, o.now_ns)).seq == kept - 1);
  CHECK(must(moment_at(txn, ts_kept, o.now_ns)).seq == kept);
  CHECK(check_still_held(txn, kept - 1).is_ok());
  CHECK(check_still_held(txn, kept - 2).err() == ERANGE);
}
