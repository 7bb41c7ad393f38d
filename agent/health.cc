#include "agent/health.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>
#include "base/sys/child.h"

namespace roam::agent {

namespace {

// The exit status of `command`, or -1 when it could not run or timed out.
int run_check(const std::string& command, int timeout_ms) {
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) {
      ::dup2(null, 0);
      ::dup2(null, 1);
    }
    unblock_signals_for_exec();
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  int st = 0;
  pid_t waited = 0;
  while ((waited = ::waitpid(pid, &st, WNOHANG)) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &st, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (waited != pid) return -1;  // its status is lost: never count that as a pass
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

}  // namespace

std::optional<std::string> first_failing_check(const std::vector<std::string>& commands, int timeout_ms) {
  for (const auto& c : commands) {
    int rc = run_check(c, timeout_ms);
    if (rc == 0) continue;
    return "health check '" + c + "' " + (rc < 0 ? "timed out or was killed" : "exited with " + std::to_string(rc));
  }
  return std::nullopt;
}

}  // namespace roam::agent
