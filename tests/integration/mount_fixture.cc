#include "mount_fixture.h"

#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "base/sys/mountinfo.h"

namespace roamtest {

namespace {

constexpr long kFuseSuperMagic = 0x65735546;

using Clock = std::chrono::steady_clock;

std::string env_path(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) FAIL(name << " is not set (run the tests with `meson test`)");
  if (::access(v, X_OK) != 0) FAIL(name << "=" << v << " is not an executable file");
  return v;
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// Reads all of memfd `fd` from the start.
std::string drain(int fd) {
  std::string out;
  ::lseek(fd, 0, SEEK_SET);
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Waits for `pid` up to `timeout_s`; true when it was reaped.
bool wait_for(pid_t pid, int& status, double timeout_s) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(10)) pause *= 2;
  }
}

std::string real_path(const std::string& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return p;
  return buf;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return "killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  return "wait status " + std::to_string(status);
}

}  // namespace

std::string roamfs_bin() { return env_path("ROAMFS"); }
std::string roamctl_bin() { return env_path("ROAMCTL"); }

std::string ProcResult::describe() const {
  std::string s = timed_out ? "timed out (killed)" : describe_status(wait_status);
  if (!out.empty()) s += "\n--- stdout:\n" + out;
  if (!err.empty()) s += "\n--- stderr:\n" + err;
  return s;
}

ProcResult run(const std::vector<std::string>& argv, double timeout_s) {
  ProcResult r;
  int out_fd = ::memfd_create("roamtest-out", MFD_CLOEXEC);
  int err_fd = ::memfd_create("roamtest-err", MFD_CLOEXEC);
  if (out_fd < 0 || err_fd < 0) throw std::runtime_error(errno_text("memfd_create"));
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(errno_text("fork"));
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd, 2);
    ::close_range(3, ~0u, 0);
    ::execvp(args[0], args.data());
    dprintf(2, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  if (!wait_for(pid, r.wait_status, timeout_s)) {
    r.timed_out = true;
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &r.wait_status, 0);
  }
  r.out = drain(out_fd);
  r.err = drain(err_fd);
  ::close(out_fd);
  ::close(err_fd);
  return r;
}

ProcResult roamctl(const std::vector<std::string>& args, double timeout_s) {
  std::vector<std::string> argv{roamctl_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, timeout_s);
}

std::string make_temp_dir(const std::string& tag) {
  std::string tmpl = "/tmp/roamtest-" + tag + "-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error(errno_text("mkdtemp " + tmpl));
  ::chmod(tmpl.c_str(), 0755);
  return tmpl;
}

void remove_tree(const std::string& path) {
  if (path.empty() || path == "/") return;
  ::nftw(
      path.c_str(),
      [](const char* p, const struct stat* st, int type, FTW*) -> int {
        if (type == FTW_DP || (type == FTW_D && S_ISDIR(st->st_mode)))
          ::rmdir(p);
        else
          ::unlink(p);
        return 0;
      },
      32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

bool is_mounted(const std::string& path, std::string* fstype) {
  auto m = roam::mount_at(real_path(path));  // the last (topmost) mount wins
  if (m && fstype) *fstype = m->fstype;
  return m.has_value();
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(errno_text("open " + path));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      throw std::runtime_error(errno_text("read " + path));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error(errno_text("open " + path));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      ::close(fd);
      throw std::runtime_error(errno_text("write " + path));
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) throw std::runtime_error(errno_text("close " + path));
}

bool has_sanitizer_report(const std::string& text) {
  return text.find("AddressSanitizer") != std::string::npos || text.find("LeakSanitizer") != std::string::npos ||
         text.find("runtime error:") != std::string::npos || text.find("ThreadSanitizer") != std::string::npos;
}

int64_t wall_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// "@1764238500.123456789"
std::string epoch_arg(int64_t ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "@%lld.%09lld", static_cast<long long>(ns / 1'000'000'000),
                static_cast<long long>(ns % 1'000'000'000));
  return buf;
}

// "2026-11-27T09:42:54.123456789Z"
std::string iso_arg(int64_t ns) {
  const time_t sec = static_cast<time_t>(ns / 1'000'000'000);
  tm t{};
  ::gmtime_r(&sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
                t.tm_hour, t.tm_min, t.tm_sec, static_cast<long long>(ns % 1'000'000'000));
  return buf;
}

std::string self_comm() {
  std::ifstream in("/proc/self/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

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

uint64_t fnv1a(const void* data, size_t len, uint64_t h) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

// ---- MountFixture ----

MountFixture::MountFixture(MountOptions options) : options_(std::move(options)) {
  dir_ = make_temp_dir("mnt");
  store_ = (options_.store_parent.empty() ? dir_ : real_path(options_.store_parent)) + "/store";
  mnt_ = dir_ + "/mnt";
  log_path_ = dir_ + "/roamfs.log";
  REQUIRE(::mkdir(mnt_.c_str(), 0755) == 0);
  ProcResult mk = roamctl({"mkfs", store_});
  INFO("roamctl mkfs " << store_ << ": " << mk.describe());
  REQUIRE(mk.exit_code() == 0);
  mount();
}

MountFixture::~MountFixture() {
  std::string problem = stop(true);
  if (!problem.empty()) {
    if (std::uncaught_exceptions() == 0) {
      FAIL_CHECK("unmounting " << mnt_ << ": " << problem);
    } else {
      std::fprintf(stderr, "roamtest: unmounting %s: %s\n", mnt_.c_str(), problem.c_str());
    }
  }
  if (is_mounted(mnt_)) {
    std::fprintf(stderr, "roamtest: %s is still mounted; leaving %s in place\n", mnt_.c_str(), dir_.c_str());
    return;
  }
  remove_tree(dir_);
  if (!options_.store_parent.empty()) remove_tree(store_);
}

std::string MountFixture::roamfs_log() const {
  try {
    return read_file(log_path_);
  } catch (const std::exception&) {
    return {};
  }
}

void MountFixture::mount() {
  REQUIRE(pid_ < 0);
  REQUIRE_FALSE(is_mounted(mnt_));
  const std::string bin = roamfs_bin();
  std::vector<std::string> argv{bin, store_, mnt_, "-f"};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  REQUIRE(log_fd >= 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    ::dup2(null, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close_range(3, ~0u, 0);
    // If the test dies (a timeout, a crash), roamfs unmounts and exits too.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    ::execv(args[0], args.data());
    dprintf(2, "cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(log_fd);
  pid_ = pid;

  auto deadline = Clock::now() + std::chrono::duration<double>(options_.mount_timeout_s);
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("roamfs " << store_ << " " << mnt_ << " -f ended before mounting: " << describe_status(status)
                     << "\n--- roamfs stderr:\n"
                     << roamfs_log());
    }
    std::string type;
    if (is_mounted(mnt_, &type) && type == "fuse.roamfs") {
      struct statfs sf {};
      if (::statfs(mnt_.c_str(), &sf) == 0 && sf.f_type == kFuseSuperMagic) break;
    }
    if (Clock::now() >= deadline) {
      std::string problem = stop(false);
      FAIL("roamfs did not mount " << mnt_ << " within " << options_.mount_timeout_s << " s " << problem
                                   << "\n--- roamfs stderr:\n"
                                   << roamfs_log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string MountFixture::stop(bool clean) {
  std::string problem;
  if (pid_ < 0) {
    if (is_mounted(mnt_)) run({"umount", "-l", mnt_}, 30);
    return problem;
  }
  if (clean) {
    // fusermount3 -u fails with EBUSY while something holds a file open;
    // give stragglers (a killed child's last close) a moment.
    bool unmounted = false;
    for (int attempt = 0; attempt < 20 && !unmounted; ++attempt) {
      if (!is_mounted(mnt_)) break;
      ProcResult r = run({"fusermount3", "-u", mnt_}, 30);
      unmounted = r.exit_code() == 0;
      if (!unmounted) {
        if (attempt == 19) problem += "fusermount3 -u failed: " + r.describe() + "; ";
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
    if (is_mounted(mnt_)) {
      ProcResult r = run({"umount", "-l", mnt_}, 30);
      if (r.exit_code() != 0) problem += "umount -l failed: " + r.describe() + "; ";
    }
  } else {
    ::kill(pid_, SIGKILL);
  }
  int status = 0;
  if (!wait_for(pid_, status, 30)) {
    problem += "roamfs did not exit within 30 s after unmount; killed; ";
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    clean = false;
  }
  pid_ = -1;
  if (is_mounted(mnt_)) {
    ProcResult r = run({"umount", "-l", mnt_}, 30);
    if (r.exit_code() != 0) problem += "umount -l failed: " + r.describe() + "; ";
  }
  if (clean && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
    problem += "roamfs ended with " + describe_status(status) + " after a clean unmount; ";
  std::string log = roamfs_log();
  if (has_sanitizer_report(log)) problem += "sanitizer report in roamfs's stderr; ";
  if (!problem.empty()) problem += "\n--- roamfs stderr:\n" + log;
  return problem;
}

void MountFixture::unmount() {
  std::string problem = stop(true);
  INFO(problem);
  REQUIRE(problem.empty());
  REQUIRE_FALSE(is_mounted(mnt_));
}

void MountFixture::kill9() {
  REQUIRE(pid_ > 0);
  std::string problem = stop(false);
  INFO(problem);
  REQUIRE(problem.empty());
  REQUIRE_FALSE(is_mounted(mnt_));
}

void MountFixture::remount() {
  if (pid_ > 0) unmount();
  mount();
}

void MountFixture::remount(std::vector<std::string> extra_args) {
  if (pid_ > 0) unmount();
  options_.extra_args = std::move(extra_args);
  mount();
}

// ---- roamctl log --json ----

std::string LogRecord::get(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? std::string() : it->second;
}

long long LogRecord::num(const std::string& key) const {
  auto it = fields.find(key);
  return it == fields.end() ? 0 : std::strtoll(it->second.c_str(), nullptr, 10);
}

bool parse_json_object(const std::string& s, std::map<std::string, std::string>& out) {
  size_t i = 0;
  auto ws = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  auto str = [&](std::string& v) -> bool {
    if (i >= s.size() || s[i] != '"') return false;
    ++i;
    while (i < s.size() && s[i] != '"') {
      char c = s[i++];
      if (c != '\\') {
        if (static_cast<unsigned char>(c) < 0x20) return false;
        v.push_back(c);
        continue;
      }
      if (i >= s.size()) return false;
      char e = s[i++];
      switch (e) {
        case '"': v.push_back('"'); break;
        case '\\': v.push_back('\\'); break;
        case '/': v.push_back('/'); break;
        case 'b': v.push_back('\b'); break;
        case 'f': v.push_back('\f'); break;
        case 'n': v.push_back('\n'); break;
        case 'r': v.push_back('\r'); break;
        case 't': v.push_back('\t'); break;
        case 'u': {
          if (i + 4 > s.size()) return false;
          unsigned code = static_cast<unsigned>(std::strtoul(s.substr(i, 4).c_str(), nullptr, 16));
          i += 4;
          if (code < 0x80) {
            v.push_back(static_cast<char>(code));
          } else if (code < 0x800) {
            v.push_back(static_cast<char>(0xC0 | (code >> 6)));
            v.push_back(static_cast<char>(0x80 | (code & 0x3F)));
          } else {
            v.push_back(static_cast<char>(0xE0 | (code >> 12)));
            v.push_back(static_cast<char>(0x80 | ((code >> 6) & 0x3F)));
            v.push_back(static_cast<char>(0x80 | (code & 0x3F)));
          }
          break;
        }
        default:
          return false;
      }
    }
    if (i >= s.size()) return false;
    ++i;
    return true;
  };
  ws();
  if (i >= s.size() || s[i] != '{') return false;
  ++i;
  ws();
  if (i < s.size() && s[i] == '}') return ++i, true;
  for (;;) {
    ws();
    std::string key, value;
    if (!str(key)) return false;
    ws();
    if (i >= s.size() || s[i] != ':') return false;
    ++i;
    ws();
    if (i < s.size() && s[i] == '"') {
      if (!str(value)) return false;
    } else {
      size_t start = i;
      while (i < s.size() && s[i] != ',' && s[i] != '}' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      value = s.substr(start, i - start);
      if (value.empty()) return false;
      if (value != "true" && value != "false" && value != "null") {
        char* end = nullptr;
        std::strtod(value.c_str(), &end);
        if (!end || *end != '\0') return false;
      }
    }
    out[key] = value;
    ws();
    if (i >= s.size()) return false;
    if (s[i] == ',') {
      ++i;
      continue;
    }
    if (s[i] == '}') {
      ++i;
      break;
    }
    return false;
  }
  ws();
  return i == s.size();
}

std::vector<LogRecord> read_log(const std::string& target, const std::vector<std::string>& extra) {
  std::vector<std::string> args{"log", target, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  ProcResult r = roamctl(args);
  INFO("roamctl log " << target << " --json: " << r.describe().substr(0, 4000));
  REQUIRE(r.exit_code() == 0);
  std::vector<LogRecord> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    LogRecord rec;
    rec.line = line;
    INFO("log line: " << line);
    REQUIRE(parse_json_object(line, rec.fields));
    out.push_back(std::move(rec));
  }
  return out;
}

std::string render(const std::vector<LogRecord>& records) {
  std::string s;
  for (const auto& r : records) s += r.line + "\n";
  return s;
}

}  // namespace roamtest
