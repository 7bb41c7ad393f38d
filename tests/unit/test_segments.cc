// fusefs/store/segments.h: append-only data segment files.
#include "fusefs/store/segments.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "fusefs/store/format.h"
#include "tests/unit/helpers.h"

using namespace roam;
using roam::testing::must;
using roam::testing::random_bytes;
using roam::testing::read_file;
using roam::testing::TempDir;

namespace {

// The real file calls, with faults on demand.
class FaultyIo : public FileIo {
 public:
  Result<int> open(const std::string& path, int flags, mode_t mode) override {
    std::lock_guard lock(mu);
    ++opens;
    return real.open(path, flags, mode);
  }
  Status pwrite_all(int fd, const char* buf, size_t len, off_t off) override {
    {
      std::lock_guard lock(mu);
      ++writes;
      if (fail_writes > 0) {
        --fail_writes;
        if (partial_bytes > 0) {  // a disk that fills up part way through
          Status s = real.pwrite_all(fd, buf, std::min(len, partial_bytes), off);
          if (!s) return s;
        }
        return Status::error(fail_errno, "pwrite: " + std::string(std::strerror(fail_errno)));
      }
    }
    return real.pwrite_all(fd, buf, len, off);
  }
  Status pread_all(int fd, char* buf, size_t len, off_t off) override { return real.pread_all(fd, buf, len, off); }
  Status fdatasync(int fd) override {
    std::lock_guard lock(mu);
    synced.push_back(fd);
    if (fail_syncs > 0) {
      --fail_syncs;
      return Status::error(EIO, "fdatasync: Input/output error");
    }
    return real.fdatasync(fd);
  }
  void close(int fd) override {
    std::lock_guard lock(mu);
    ++closes;
    real.close(fd);
  }

  std::mutex mu;
  PosixFileIo real;
  int fail_writes = 0;
  int fail_errno = ENOSPC;
  size_t partial_bytes = 0;
  int fail_syncs = 0;
  int opens = 0, writes = 0, closes = 0;
  std::vector<int> synced;
};

std::string seg_path(const TempDir& t, uint32_t id) {
  char name[32];
  std::snprintf(name, sizeof name, "/%08u.seg", id);
  return t.path() + name;
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<uint64_t>(st.st_size);
}

std::string read_back(Segments& s, SegmentLocation loc, size_t len) {
  std::string out(len, '\0');
  Status st = s.read(loc, out.data(), len);
  INFO("read " << loc.segment << ":" << loc.offset << "+" << len << ": " << roam::testing::describe(st));
  REQUIRE(st.is_ok());
  return out;
}

}  // namespace

TEST_CASE("append then read round trips", "[segments]") {
  TempDir t;
  PosixFileIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  CHECK(file_size(seg_path(t, 1)) == 0);  // the first segment is created at open
  CHECK(segs->bytes_used() == 0);

  std::mt19937_64 rng(50);
  std::vector<std::pair<SegmentLocation, std::string>> written;
  uint64_t total = 0;
  for (int i = 0; i < 200; ++i) {
    std::string data = random_bytes(rng, rng() % 3 == 0 ? rng() % 140000 : rng() % 100);
    SegmentLocation loc = must(segs->append(data));
    CHECK(loc.segment == 1);
    CHECK(loc.offset == total);  // appended contiguously
    total += data.size();
    written.emplace_back(loc, std::move(data));
  }
  CHECK(segs->bytes_used() == total);
  CHECK(file_size(seg_path(t, 1)) == total);
  for (const auto& [loc, data] : written) REQUIRE(read_back(*segs, loc, data.size()) == data);
  // a piece in the middle of an append
  const auto& [loc, data] = written[written.size() / 2];
  if (data.size() > 10) CHECK(read_back(*segs, {loc.segment, loc.offset + 3}, 5) == data.substr(3, 5));
  REQUIRE_OK(segs->sync());
}

TEST_CASE("reading past the end of a segment is EIO, not short data", "[segments]") {
  TempDir t;
  PosixFileIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  must(segs->append("0123456789"));
  std::string buf(20, 'x');
  Status s = segs->read({1, 5}, buf.data(), 20);
  REQUIRE_ERR(s, EIO);
  CHECK(s.message().find(seg_path(t, 1)) != std::string::npos);
  // a segment that does not exist
  CHECK_FALSE(segs->read({7, 0}, buf.data(), 1).is_ok());
}

TEST_CASE("ENOSPC on append is returned and a later append works", "[segments]") {
  TempDir t;
  FaultyIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  SegmentLocation a = must(segs->append("first"));

  // Nothing written, or part of the data written before the disk filled.
  io.partial_bytes = GENERATE(size_t{0}, size_t{3});
  INFO("bytes written before the failure: " << io.partial_bytes);
  io.fail_writes = 1;
  auto failed = segs->append("doomed data");
  REQUIRE_ERR(failed, ENOSPC);
  CHECK(failed.status().message().find(seg_path(t, 1)) != std::string::npos);

  SegmentLocation b = must(segs->append("second"));
  CHECK(b.segment == a.segment);
  CHECK(b.offset >= a.offset + 5);
  CHECK(read_back(*segs, a, 5) == "first");
  CHECK(read_back(*segs, b, 6) == "second");
  REQUIRE_OK(segs->sync());

  // other errors pass through the same way
  io.fail_errno = EIO;
  io.fail_writes = 1;
  REQUIRE_ERR(segs->append("x"), EIO);
  SegmentLocation c = must(segs->append("third"));
  CHECK(read_back(*segs, c, 5) == "third");
  CHECK(read_back(*segs, b, 6) == "second");
}

TEST_CASE("sync fdatasyncs what was written and retries after a failure", "[segments]") {
  TempDir t;
  FaultyIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.size() == 1);  // the directory: the first segment is new
  io.synced.clear();
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.empty());  // nothing written since
  must(segs->append("abc"));
  must(segs->append("def"));
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.size() == 1);  // one segment, once
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.size() == 1);  // nothing new

  must(segs->append("ghi"));
  io.fail_syncs = 1;
  REQUIRE_ERR(segs->sync(), EIO);
  CHECK(io.synced.size() == 2);
  REQUIRE_OK(segs->sync());  // still dirty: tried again
  CHECK(io.synced.size() == 3);
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.size() == 3);

  // A new segment's name is made durable with its first sync, retried too,
  // and a failed directory sync leaves the data written since dirty.
  REQUIRE_OK(segs->roll());
  must(segs->append("jkl"));
  io.fail_syncs = 1;
  REQUIRE_ERR(segs->sync(), EIO);
  CHECK(io.synced.size() == 4);  // the directory, failed
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.size() == 6);  // the directory and the new segment
  REQUIRE_OK(segs->sync());
  CHECK(io.synced.size() == 6);
}

TEST_CASE("reopening resumes at the end of the last segment", "[segments]") {
  TempDir t;
  FaultyIo io;
  std::vector<std::pair<SegmentLocation, std::string>> written;
  uint64_t total = 0;
  {
    auto segs = must(Segments::open(t.path(), io, false));
    for (std::string d : {"alpha", "beta", "gamma"}) {
      written.emplace_back(must(segs->append(d)), d);
      total += d.size();
    }
    REQUIRE_OK(segs->sync());
  }
  CHECK(io.closes == io.opens);  // every file closed by the destructor
  {
    auto segs = must(Segments::open(t.path(), io, false));
    CHECK(segs->bytes_used() == total);
    SegmentLocation d = must(segs->append("delta"));
    CHECK(d.segment == 1);
    CHECK(d.offset == total);
    for (const auto& [loc, data] : written) CHECK(read_back(*segs, loc, data.size()) == data);
    CHECK(read_back(*segs, d, 5) == "delta");
    total += 5;
    // an append that dies part way leaves bytes nothing refers to ...
    io.fail_writes = 1;
    io.partial_bytes = 2;
    REQUIRE_ERR(segs->append("lost"), ENOSPC);
  }
  // ... and the next open starts after them, never inside them.
  auto segs = must(Segments::open(t.path(), io, false));
  SegmentLocation e = must(segs->append("epsilon"));
  CHECK(e.offset == total + 2);
  CHECK(read_back(*segs, e, 7) == "epsilon");
  CHECK(read_file(seg_path(t, 1)) == "alphabetagammadeltaloepsilon");
}

TEST_CASE("open picks the highest segment and ignores other files", "[segments]") {
  TempDir t;
  roam::testing::write_file(seg_path(t, 1), std::string(100, 'a'));
  roam::testing::write_file(seg_path(t, 3), std::string(50, 'c'));
  for (const char* junk : {"/1.seg", "/00000009.seg.tmp", "/00000009.SEG", "/notes", "/000000010.seg"})
    roam::testing::write_file(t.path() + junk, "junk");
  PosixFileIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  CHECK(segs->bytes_used() == 150);
  SegmentLocation loc = must(segs->append("zz"));
  CHECK(loc.segment == 3);
  CHECK(loc.offset == 50);
  CHECK(read_back(*segs, {1, 98}, 2) == "aa");
  CHECK(read_back(*segs, {3, 49}, 3) == "czz");
  CHECK(segs->bytes_used() == 152);
}

TEST_CASE("a sync keeps zeros written ahead of the tail, which appends fill and a clean close gives back", "[segments]") {
  TempDir t;
  FaultyIo io;
  {
    auto segs = must(Segments::open(t.path(), io, false));
    must(segs->append("abc"));
    REQUIRE_OK(segs->sync());
    CHECK(file_size(seg_path(t, 1)) == 3 + kSegmentReserve);
    CHECK(segs->bytes_used() == 3 + kSegmentReserve);
    SegmentLocation def = must(segs->append("def"));
    CHECK(def.offset == 3);  // into the reserve, not after it
    REQUIRE_OK(segs->sync());
    CHECK(file_size(seg_path(t, 1)) == 3 + kSegmentReserve);  // most of it is left: no top-up
    CHECK(read_back(*segs, def, 3) == "def");
    // Once appends have used three quarters of it, the next sync tops it up.
    std::string big(kSegmentReserve * 3 / 4, 'x');
    SegmentLocation at = must(segs->append(big));
    REQUIRE_OK(segs->sync());
    CHECK(file_size(seg_path(t, 1)) == at.offset + big.size() + kSegmentReserve);
    CHECK(read_back(*segs, at, big.size()) == big);
  }
  // The clean close truncated the zeros away.
  CHECK(read_file(seg_path(t, 1)) == "abcdef" + std::string(kSegmentReserve * 3 / 4, 'x'));

  // So does sealing a segment: the next one starts, the old one keeps only its data.
  auto segs = must(Segments::open(t.path(), io, false));
  must(segs->append("ghi"));
  REQUIRE_OK(segs->sync());
  const uint64_t data_bytes = 6 + kSegmentReserve * 3 / 4 + 3;
  CHECK(file_size(seg_path(t, 1)) == data_bytes + kSegmentReserve);
  REQUIRE_OK(segs->roll());
  CHECK(file_size(seg_path(t, 1)) == data_bytes);
  CHECK(segs->bytes_used() == data_bytes);
  CHECK(segs->sizes().at(1) == data_bytes);
}

TEST_CASE("after a crash the next open resumes after the reserve; a full disk leaves it short", "[segments]") {
  TempDir t, crashed;
  FaultyIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  SegmentLocation abc = must(segs->append("abc"));
  REQUIRE_OK(segs->sync());
  // The files as a kill -9 would leave them: the zeros are still there.
  std::filesystem::copy_file(seg_path(t, 1), seg_path(crashed, 1));
  {
    auto reopened = must(Segments::open(crashed.path(), io, false));
    SegmentLocation next = must(reopened->append("next"));
    CHECK(next.offset == 3 + kSegmentReserve);  // never inside the zeros
    CHECK(read_back(*reopened, abc, 3) == "abc");
    CHECK(read_back(*reopened, next, 4) == "next");
  }

  // A full disk while topping up: the sync still succeeds, appends go on.
  REQUIRE_OK(segs->roll());
  must(segs->append("ghi"));
  io.fail_writes = 1;
  io.partial_bytes = 1000;
  REQUIRE_OK(segs->sync());
  CHECK(file_size(seg_path(t, 2)) == 3 + 1000);
  SegmentLocation jkl = must(segs->append("jkl"));
  CHECK(jkl.offset == 3);
  REQUIRE_OK(segs->sync());  // tops up from where the zeros stopped
  CHECK(file_size(seg_path(t, 2)) == 6 + kSegmentReserve);
  CHECK(read_back(*segs, jkl, 3) == "jkl");
}

TEST_CASE("a full segment rolls over to the next one", "[segments]") {
  // A sparse file of the target size costs no disk space.
  TempDir t;
  int fd = ::open(seg_path(t, 1).c_str(), O_CREAT | O_WRONLY, 0600);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, static_cast<off_t>(kSegmentTargetSize)) == 0);
  ::close(fd);
  PosixFileIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  SegmentLocation loc = must(segs->append("next"));
  CHECK(loc.segment == 2);
  CHECK(loc.offset == 0);
  CHECK(file_size(seg_path(t, 2)) == 4);
  CHECK(segs->bytes_used() == kSegmentTargetSize + 4);
  CHECK(read_back(*segs, loc, 4) == "next");
  SegmentLocation loc2 = must(segs->append("more"));
  CHECK(loc2.segment == 2);
  CHECK(loc2.offset == 4);
}

TEST_CASE("opening a missing segment directory fails", "[segments]") {
  TempDir t;
  PosixFileIo io;
  auto r = Segments::open(t.sub("absent"), io, false);
  REQUIRE_ERR(r, ENOENT);
  CHECK(r.status().message().find(t.sub("absent")) != std::string::npos);
}

TEST_CASE("concurrent appends get disjoint ranges, with syncs topping up the reserve meanwhile", "[segments]") {
  TempDir t;
  PosixFileIo io;
  auto segs = must(Segments::open(t.path(), io, false));
  constexpr int kThreads = 4, kEach = 200;
  std::mutex mu;
  std::vector<std::pair<SegmentLocation, std::string>> written;
  std::atomic<int> failures{0};
  std::atomic<bool> appending{true};
  std::thread syncer([&] {  // zeros written ahead must never land on an append's bytes
    while (appending) {
      if (!segs->sync().is_ok()) ++failures;
    }
  });
  std::vector<std::thread> threads;
  for (int th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      std::mt19937_64 rng(100 + th);
      for (int i = 0; i < kEach; ++i) {
        std::string data = random_bytes(rng, 1 + rng() % 2000);
        auto r = segs->append(data);
        if (!r.is_ok()) {
          ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        written.emplace_back(*r, std::move(data));
      }
    });
  }
  for (auto& th : threads) th.join();
  appending = false;
  syncer.join();
  REQUIRE(failures == 0);
  REQUIRE(written.size() == kThreads * kEach);
  std::sort(written.begin(), written.end(),
            [](const auto& a, const auto& b) { return a.first.offset < b.first.offset; });
  uint64_t end = 0;
  for (const auto& [loc, data] : written) {
    CHECK(loc.offset == end);  // no gaps, no overlaps
    end = loc.offset + data.size();
    REQUIRE(read_back(*segs, loc, data.size()) == data);
  }
  CHECK(segs->bytes_used() >= end);  // and the reserve
}

TEST_CASE("a read-only open changes nothing on disk and refuses appends", "[segments]") {
  TempDir t;
  PosixFileIo io;
  {
    auto segs = must(Segments::open(t.path(), io, true));
    auto r = segs->append("data");
    REQUIRE_FALSE(r);
    CHECK(r.status().err() == EROFS);
  }
  CHECK(std::filesystem::is_empty(t.path()));  // no first segment was created
  {
    auto writer = must(Segments::open(t.path(), io, false));
    must(writer->append("hello"));
  }
  auto reader = must(Segments::open(t.path(), io, true));
  char buf[5];
  REQUIRE(reader->read({1, 0}, buf, 5));
  CHECK(std::string(buf, 5) == "hello");
}
