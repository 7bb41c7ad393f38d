#include "crash_workload.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <sstream>
#include <utility>

namespace roamtest {

namespace {

bool write_all(int fd, const std::string& data, off_t off) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// lstat every entry below `dir`; returns how many.
size_t walk_count(const std::string& dir) {
  size_t n = 0;
  DIR* d = ::opendir(dir.c_str());
  INFO("opendir " << dir << ": " << std::strerror(errno));
  REQUIRE(d != nullptr);
  std::vector<std::string> subdirs;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    const std::string p = dir + "/" + name;
    INFO("lstat " << p << ": " << std::strerror(errno));
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    ++n;
    if (S_ISDIR(st.st_mode)) subdirs.push_back(p);
  }
  ::closedir(d);
  for (const auto& s : subdirs) n += walk_count(s);
  return n;
}

}  // namespace

[[noreturn]] void churn_workload(const std::string& mnt, const std::string& rel, const std::string& records,
                                 uint64_t seed, unsigned durable_percent) {
  ::prctl(PR_SET_NAME, "roam-workload", 0, 0, 0);
  std::mt19937_64 rng(seed);
  int rec = ::open(records.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (rec < 0) ::_exit(2);
  auto die = [] { ::_exit(0); };  // roamfs is gone: expected
  std::vector<std::string> subdirs{rel};
  std::vector<std::string> scratch;  // files that are not durable: anything may happen to them
  uint64_t counter = 0;
  uint64_t budget = 12u << 20;  // bytes of data per round, so that scrub stays quick
  auto take = [&](uint64_t n) {
    n = std::min<uint64_t>(n, budget);
    budget -= n;
    return static_cast<size_t>(n);
  };
  auto any_dir = [&] { return subdirs[rng() % subdirs.size()]; };
  for (;;) {
    // Below 61: the kinds of churn; from 61: a durable file.
    const uint64_t r = rng() % 100 < durable_percent ? 61 : rng() % 61;
    const std::string name = std::to_string(counter++);
    if (r < 22) {  // a scratch file, never fsync'd
      const std::string p = any_dir() + "/t" + name;
      int fd = ::open((mnt + "/" + p).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
      if (fd < 0) die();
      size_t len = take(rng() % 20 == 0 ? rng() % (2 << 20) : rng() % (256 << 10));
      if (!write_all(fd, random_bytes(rng, len), 0)) die();
      if (::close(fd) != 0) die();
      scratch.push_back(p);
    } else if (r < 36 && !scratch.empty()) {  // overwrite part of one
      const std::string& p = scratch[rng() % scratch.size()];
      int fd = ::open((mnt + "/" + p).c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) die();
      if (!write_all(fd, random_bytes(rng, take(1 + rng() % 100000)), static_cast<off_t>(rng() % 300000))) die();
      if (::close(fd) != 0) die();
    } else if (r < 45 && !scratch.empty()) {  // rename one, maybe over another
      const std::string from = scratch[rng() % scratch.size()];
      const std::string to = rng() % 3 == 0 ? scratch[rng() % scratch.size()] : any_dir() + "/m" + name;
      if (::rename((mnt + "/" + from).c_str(), (mnt + "/" + to).c_str()) != 0) die();
      if (to != from) {
        std::erase(scratch, to);
        std::erase(scratch, from);
        scratch.push_back(to);
      }
    } else if (r < 53 && !scratch.empty()) {  // delete one
      size_t i = rng() % scratch.size();
      if (::unlink((mnt + "/" + scratch[i]).c_str()) != 0) die();
      scratch.erase(scratch.begin() + static_cast<long>(i));
    } else if (r < 57 && !scratch.empty()) {  // truncate one
      if (::truncate((mnt + "/" + scratch[rng() % scratch.size()]).c_str(), static_cast<off_t>(rng() % 200000)) != 0)
        die();
    } else if (r < 61) {  // a directory
      const std::string p = any_dir() + "/d" + name;
      if (::mkdir((mnt + "/" + p).c_str(), 0755) != 0) die();
      subdirs.push_back(p);
    } else {  // a durable file: written, fsync'd, recorded, never touched again
      const std::string p = any_dir() + "/dur" + name;
      size_t len = take(1 + (rng() % 10 == 0 ? rng() % (2 << 20) : rng() % (300 << 10)));
      const std::string data = random_bytes(rng, len);
      int fd = ::open((mnt + "/" + p).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0640);
      if (fd < 0) die();
      if (!write_all(fd, data, 0)) die();
      if (::fsync(fd) != 0) die();
      char line[PATH_MAX + 64];
      int n = std::snprintf(line, sizeof line, "%s %zu %" PRIu64 "\n", p.c_str(), data.size(),
                            fnv1a(data.data(), data.size()));
      if (::write(rec, line, static_cast<size_t>(n)) != n) ::_exit(3);  // one write: a line is whole or absent
      ::close(fd);
    }
  }
}

std::vector<Durable> parse_records(const std::string& file, int round) {
  std::vector<Durable> out;
  std::string text;
  try {
    text = read_file(file);
  } catch (const std::exception&) {
    return out;
  }
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream f(line);
    Durable d;
    d.round = round;
    f >> d.path >> d.size >> d.hash;
    INFO("record line: " << line);
    REQUIRE(!f.fail());
    out.push_back(d);
  }
  return out;
}


Churn::Churn(const std::string& mnt, const std::string& rel, std::string records, uint64_t seed,
             unsigned durable_percent)
    : records_(std::move(records)) {
  child_ = ::fork();
  REQUIRE(child_ >= 0);
  if (child_ == 0) churn_workload(mnt, rel, records_, seed, durable_percent);
}

Churn::~Churn() {
  if (child_ <= 0) return;
  ::kill(child_, SIGKILL);
  ::waitpid(child_, nullptr, 0);
}

std::vector<Durable> Churn::stop(int round) {
  ::kill(child_, SIGKILL);
  int st = 0;
  const pid_t reaped = ::waitpid(child_, &st, 0);
  const pid_t child = std::exchange(child_, -1);
  REQUIRE(reaped == child);
  if (WIFEXITED(st)) {  // it stops by itself (status 0) when the mount goes away
    INFO("workload exit status " << WEXITSTATUS(st));
    REQUIRE(WEXITSTATUS(st) == 0);
  }
  return parse_records(records_, round);
}

AfterCrash check_after_crash(MountFixture& fx, const std::vector<Durable>& durable, int round) {
  for (const auto& d : durable) {
    INFO("durable file /" << d.path << " of round " << d.round << " (" << d.size << " bytes)");
    std::string content;
    try {
      content = read_file(fx.path(d.path));
    } catch (const std::exception& e) {
      FAIL("cannot read it after the crash: " << e.what());
    }
    REQUIRE(content.size() == d.size);
    REQUIRE(fnv1a(content.data(), content.size()) == d.hash);
  }
  AfterCrash after;
  after.entries = walk_count(fx.mnt());

  ProcResult scrub = roamctl({"scrub", fx.store()});
  {
    INFO("roamctl scrub " << fx.store() << " after the crash in round " << round << ": " << scrub.describe());
    REQUIRE(scrub.exit_code() == 0);
  }
  auto log = read_log(fx.store());
  std::set<std::string> created;
  for (const auto& r : log)
    if (r.get("op") == "create") created.insert(r.get("path"));
  for (const auto& d : durable) {
    INFO("the op log has no create of /" << d.path);
    CHECK(created.count("/" + d.path) == 1);
  }
  for (size_t i = 1; i < log.size(); ++i) REQUIRE(log[i].num("seq") > log[i - 1].num("seq"));
  after.log_records = log.size();
  return after;
}

}  // namespace roamtest
