// Crash consistency (promise 5): SIGKILL roamfs at a random moment while a
// workload runs, remount the same store with no repair step, and check that
//  - the mount succeeds;
//  - every file the workload fsync'd is there with exactly its content (the
//    workload records a file outside the mount only after fsync returns, and
//    never touches it again), and the op log has its create;
//  - `roamctl scrub STORE` passes: every checksum verifies, structure consistent;
//  - `roamctl log` works.
// Each round works in its own directory; files of earlier rounds are checked
// again after every later crash.
//
// ROAM_CRASH_ROUNDS (default 20) and ROAM_SEED (default fixed) tune it; the
// seed is printed and shown with every failure.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

std::string random_bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  for (; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

bool write_all(int fd, const std::string& data, off_t off) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off + static_cast<off_t>(done));
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// The workload, in a forked child: runs until killed or until the mount
// fails under it. `rel` is its directory relative to the mount root.
[[noreturn]] void workload(const std::string& mnt, const std::string& rel, const std::string& records,
                           uint64_t seed) {
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
    const uint64_t r = rng() % 100;
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

struct Durable {
  std::string path;  // relative to the mount root
  size_t size = 0;
  uint64_t hash = 0;
  int round = 0;
};

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

TEST_CASE("SIGKILL of roamfs loses nothing fsync'd and needs no repair", "[crash]") {
  const uint64_t seed = env_u64("ROAM_SEED", 5150);
  const int rounds = static_cast<int>(env_u64("ROAM_CRASH_ROUNDS", 20));
  std::printf("crash: ROAM_SEED=%" PRIu64 " ROAM_CRASH_ROUNDS=%d\n", seed, rounds);
  std::fflush(stdout);
  INFO("reproduce with ROAM_SEED=" << seed << " ROAM_CRASH_ROUNDS=" << rounds);
  std::mt19937_64 rng(seed);

  MountFixture fx;
  std::vector<Durable> durable;
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    INFO("round " << round);
    const std::string rel = "r" + std::to_string(round);
    REQUIRE(::mkdir(fx.path(rel).c_str(), 0755) == 0);
    const std::string records = fx.dir() + "/durable-" + std::to_string(round) + ".txt";
    const uint64_t wseed = rng();
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) workload(fx.mnt(), rel, records, wseed);

    const auto delay = std::chrono::milliseconds(10 + rng() % 491);
    std::this_thread::sleep_for(delay);
    fx.kill9();  // SIGKILL roamfs, reap it, lazily unmount
    ::kill(child, SIGKILL);
    int st = 0;
    REQUIRE(::waitpid(child, &st, 0) == child);
    if (WIFEXITED(st)) {
      INFO("workload exit status " << WEXITSTATUS(st));
      REQUIRE(WEXITSTATUS(st) == 0);
    }
    auto fresh = parse_records(records, round);
    durable.insert(durable.end(), fresh.begin(), fresh.end());

    // No repair step: mount the same store again.
    fx.mount();

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
    const size_t entries = walk_count(fx.mnt());

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
    std::printf("crash round %2d: killed after %3lld ms; %zu durable files from this round, %zu in all; %zu entries; "
                "%zu log records\n",
                round, static_cast<long long>(delay.count()), fresh.size(), durable.size(), entries, log.size());
    std::fflush(stdout);
  }
  // A clean unmount at the end, and a last scrub of the store at rest.
  fx.unmount();
  ProcResult scrub = roamctl({"scrub", fx.store()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("crash: %d rounds, %zu durable files verified, %.1f s\n", rounds, durable.size(), secs);
}
