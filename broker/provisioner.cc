#include "broker/provisioner.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include "base/sys/child.h"

namespace roam::broker {

Result<pid_t> run_provisioner(const ProvisionRequest& req) {
  if (req.command.empty())
    return Status::not_found("desktop " + req.desktop + " does not exist and no provisioner is configured");
  int log = ::open(req.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return Status::error(errno, "cannot open " + req.log_file + ": " + std::strerror(errno));
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log);
    return Status::error(err, "cannot fork the provisioner");
  }
  if (pid == 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
    unblock_signals_for_exec();
    ::setsid();
    ::setenv("ROAM_ACTION", req.action.c_str(), 1);
    ::setenv("ROAM_DESKTOP", req.desktop.c_str(), 1);
    ::setenv("ROAM_AGENT_KEY_FILE", req.key_file.c_str(), 1);
    ::setenv("ROAM_BROKER_ENDPOINT", req.broker_endpoint.c_str(), 1);
    ::setenv("ROAM_BROKER_PUBLIC_KEY", req.broker_public_hex.c_str(), 1);
    ::setenv("ROAM_EXPORT_DIR", req.export_dir.c_str(), 1);
    ::execl("/bin/sh", "sh", "-c", req.command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(log);
  return pid;
}

void reap_children() {
  int st = 0;
  while (::waitpid(-1, &st, WNOHANG) > 0) {
  }
}

}  // namespace roam::broker
