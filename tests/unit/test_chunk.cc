// fusefs/oplog/chunk.h: chunks of consecutive op log records.
#include "fusefs/oplog/chunk.h"

#include <catch2/catch.hpp>
#include <random>

#include "tests/unit/helpers.h"
#include "tests/unit/record_samples.h"

using namespace roam;
using namespace roam::testing;
using roam::oplog::Chunk;

namespace {

std::vector<OpRecord> consecutive(std::mt19937_64& rng, uint64_t first, size_t n) {
  std::vector<OpRecord> out;
  int64_t ts = 1'800'000'000'000'000'000;
  for (size_t i = 0; i < n; ++i) {
    OpRecord r = random_record(rng);
    r.seq = first + i;
    r.ts_ns = ts += static_cast<int64_t>(rng() % 1'000'000'000);
    if (i > 0 && rng() % 2) r.caller = out.back().caller;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

TEST_CASE("a chunk holds consecutive records and decodes each one", "[oplog][chunk]") {
  std::mt19937_64 rng(40);
  const auto records = consecutive(rng, 100, 12);
  const std::string value = Chunk::encode(records);
  ExactBuffer buf(value);
  Chunk c = must(Chunk::parse(100, buf.view()));
  CHECK(c.first() == 100);
  CHECK(c.last() == 111);
  CHECK(c.holds(105));
  CHECK_FALSE(c.holds(99));
  CHECK_FALSE(c.holds(112));
  CHECK(c.last_ts() == records.back().ts_ns);
  for (const OpRecord& r : records) {
    CHECK(c.ts_of(r.seq) == r.ts_ns);
    check_same(r, must(c.record(r.seq)));
  }
}

TEST_CASE("appending grows a chunk up to its size limit", "[oplog][chunk]") {
  std::mt19937_64 rng(41);
  auto records = consecutive(rng, 1, 200);
  std::string value = Chunk::encode({records[0]});
  size_t held = 1;
  for (; held < records.size(); ++held) {
    Chunk c = must(Chunk::parse(1, value));
    auto grown = must(c.appended(records[held]));
    if (!grown) break;
    CHECK(grown->size() > value.size());
    value = *grown;
  }
  CHECK(held > 5);
  CHECK(held < records.size());
  CHECK(value.size() <= oplog::kChunkBytes);
  Chunk c = must(Chunk::parse(1, value));
  CHECK(c.last() == held);
  for (size_t i = 0; i < held; ++i) check_same(records[i], must(c.record(i + 1)));
  // Appended or encoded at once: the same bytes.
  CHECK(value == Chunk::encode({records.begin(), records.begin() + static_cast<ptrdiff_t>(held)}));
}

TEST_CASE("a format-1 value reads as a chunk of one that never grows", "[oplog][chunk]") {
  OpRecord r = full_record();
  const std::string value = encode_record_v1(r);
  Chunk c = must(Chunk::parse(r.seq, value));
  CHECK(c.first() == r.seq);
  CHECK(c.last() == r.seq);
  CHECK(c.last_ts() == r.ts_ns);
  check_same(r, must(c.record(r.seq)));
  OpRecord next = r;
  next.seq = r.seq + 1;
  CHECK_FALSE(must(c.appended(next)).has_value());
}

TEST_CASE("a malformed chunk is corrupt, never a crash", "[oplog][chunk]") {
  std::mt19937_64 rng(42);
  const std::string good = Chunk::encode(consecutive(rng, 1, 6));
  CHECK(Chunk::parse(1, "").status().err() == EIO);
  CHECK(Chunk::parse(1, std::string(1, '\x02')).status().err() == EIO);  // no records
  CHECK(Chunk::parse(1, std::string("\x07\x01", 2)).status().err() == EIO);  // unknown version
  for (int n = 0; n < 20000; ++n) {
    std::string v = good;
    if (n % 2) v.resize(1 + rng() % (v.size() - 1));
    for (int k = n % 3; k > 0; --k) v[rng() % v.size()] = static_cast<char>(rng());
    ExactBuffer buf(v);
    auto c = Chunk::parse(1, buf.view());
    if (!c.is_ok()) {
      CHECK(c.status().err() == EIO);
      continue;
    }
    for (uint64_t seq = c->first(); seq <= c->last(); ++seq) {
      auto r = c->record(seq);
      if (!r.is_ok()) CHECK(r.status().err() == EIO);
    }
  }
}
