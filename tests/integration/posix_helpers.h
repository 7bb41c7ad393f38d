// Small helpers shared by the integration tests: errno assertions, forked
// children (as other users), and looking for records in the op log.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "mount_fixture.h"

// REQUIRE that `expr` (a syscall returning -1 on error) succeeds.
#define REQUIRE_OK(expr)                                                              \
  do {                                                                                \
    errno = 0;                                                                        \
    auto rc_ = (expr);                                                                \
    int err_ = errno;                                                                 \
    INFO(#expr << " returned " << rc_ << " (" << (rc_ < 0 ? std::strerror(err_) : "ok") << ")"); \
    REQUIRE(rc_ >= 0);                                                                \
  } while (0)

// REQUIRE that `expr` fails with errno `e`.
#define REQUIRE_ERRNO(expr, e)                                                          \
  do {                                                                                  \
    errno = 0;                                                                          \
    auto rc_ = (expr);                                                                  \
    int err_ = errno;                                                                   \
    INFO(#expr << " returned " << rc_ << " with errno " << err_ << " (" << std::strerror(err_) \
               << "), expected " << #e);                                                \
    REQUIRE(rc_ == -1);                                                                 \
    REQUIRE(err_ == (e));                                                               \
  } while (0)

namespace roamtest {

// Runs `fn` in a forked child and returns its exit status (128+signal when
// killed). The child must not use Catch assertions: it reports through its
// exit code (0 = success).
inline int in_child(const std::function<int()>& fn) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int rc = 125;
    try {
      rc = fn();
    } catch (...) {
      rc = 124;
    }
    ::_exit(rc);
  }
  int st = 0;
  REQUIRE(::waitpid(pid, &st, 0) == pid);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// In a child: drop to uid/gid with no supplementary groups. False on failure.
inline bool become(uid_t uid, gid_t gid) {
  return ::setgroups(0, nullptr) == 0 && ::setresgid(gid, gid, gid) == 0 && ::setresuid(uid, uid, uid) == 0;
}

// What a log record must say; empty strings / negative numbers are "any".
struct Expect {
  std::string op, path, path2;
  long long pid = -1;
  std::string comm;
  long long uid = -1;
  std::string details_has;  // substring of "details"
};

inline bool matches(const LogRecord& r, const Expect& e) {
  if (!e.op.empty() && r.get("op") != e.op) return false;
  if (!e.path.empty() && r.get("path") != e.path) return false;
  if (!e.path2.empty() && r.get("path2") != e.path2) return false;
  if (e.pid >= 0 && r.num("pid") != e.pid) return false;
  if (!e.comm.empty() && r.get("comm") != e.comm) return false;
  if (e.uid >= 0 && r.num("uid") != e.uid) return false;
  if (!e.details_has.empty() && r.get("details").find(e.details_has) == std::string::npos) return false;
  return true;
}

// The record of the calling process (pid and comm) doing `op` on `path`.
inline Expect by_me(std::string op, std::string path, std::string path2 = {}) {
  Expect e;
  e.op = std::move(op);
  e.path = std::move(path);
  e.path2 = std::move(path2);
  e.pid = ::getpid();
  e.comm = self_comm();
  return e;
}

// REQUIREs at least one record matching `e`; returns the first.
inline LogRecord expect_logged(const std::vector<LogRecord>& log, const Expect& e) {
  for (const auto& r : log)
    if (matches(r, e)) return r;
  Expect loose;
  loose.op = e.op;
  loose.path = e.path;
  std::vector<LogRecord> near;
  for (const auto& r : log)
    if (matches(r, loose)) near.push_back(r);
  std::string all = render(log);
  if (all.size() > 6000) all = "..." + all.substr(all.size() - 6000);
  FAIL("no log record with op '" << e.op << "' path '" << e.path << "'"
                                 << (e.path2.empty() ? "" : " path2 '" + e.path2 + "'")
                                 << (e.pid >= 0 ? " pid " + std::to_string(e.pid) : "")
                                 << (e.comm.empty() ? "" : " comm '" + e.comm + "'")
                                 << (e.uid >= 0 ? " uid " + std::to_string(e.uid) : "")
                                 << (e.details_has.empty() ? "" : " details containing '" + e.details_has + "'")
                                 << "\n--- records with that op and path:\n"
                                 << render(near) << "--- whole log:\n"
                                 << all);
  return {};
}

// One "  key: value" line per entry: outcomes of cases by name, for failure
// messages and comparisons.
inline std::string render(const std::map<std::string, std::string>& m) {
  std::string s;
  for (const auto& [k, v] : m) s += "  " + k + ": " + v + "\n";
  return s;
}

// A number from the environment (seeds, sizes), or `fallback` when unset.
inline uint64_t env_u64(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  return std::strtoull(v, nullptr, 0);
}

// Flushes the mount (dirty pages reach roamfs and are logged).
inline void sync_mount(const std::string& mnt) {
  const int fd = ::open(mnt.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  const int rc = ::syncfs(fd);
  const int err = errno;
  ::close(fd);
  INFO("syncfs " << mnt << ": " << std::strerror(err));
  REQUIRE(rc == 0);
}

// Writes `data` to `path` and fsyncs it, so it is logged before this returns
// (with the writeback cache it would otherwise reach roamfs later).
inline void write_synced(const std::string& path, const std::string& data) {
  write_file(path, data);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

// The moment between two changes: the clock read after the first is logged,
// with a pause so the second is logged strictly later.
inline int64_t moment_after_change() {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const int64_t t = wall_ns();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return t;
}

// The seq of the newest record in the op log of `target` (0: none).
inline long long last_seq(const std::string& target) {
  auto log = read_log(target);
  return log.empty() ? 0 : log.back().num("seq");
}

// "roamctl ARGS...", for failure messages.
inline std::string joined(const std::vector<std::string>& args) {
  std::string s = "roamctl";
  for (const auto& a : args) s += " " + a;
  return s;
}

// What a successful `roamctl restore ... --json` said.
struct Restored {
  long long seq = 0;      // the restore's op (0: nothing changed)
  long long changes = 0;
  std::string command, out;
};

// Runs `roamctl ARGS... --json` (a restore); REQUIREs success and returns
// what its last line said.
inline Restored restore_ok(std::vector<std::string> args) {
  args.push_back("--json");
  Restored res;
  res.command = joined(args);
  ProcResult r = roamctl(args);
  INFO(res.command << ": " << r.describe().substr(0, 6000));
  REQUIRE(r.exit_code() == 0);
  REQUIRE(r.err.empty());
  std::istringstream in(r.out);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  std::map<std::string, std::string> f;
  REQUIRE(parse_json_object(last, f));
  REQUIRE(f.count("seq"));
  REQUIRE(f.count("changes"));
  res.seq = std::stoll(f["seq"]);
  res.changes = std::stoll(f["changes"]);
  res.out = r.out;
  return res;
}

}  // namespace roamtest
