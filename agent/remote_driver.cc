#include "agent/remote_driver.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "agent/remote_relay.h"
#include "base/sys/files.h"
#include "protocol/curve_keys.h"

namespace roam::agent {

namespace {

class RemoteDriver final : public MountDriver {
 public:
  explicit RemoteDriver(DriverContext context) : context_(std::move(context)) {}

  Status attach(const std::string& export_path, const std::string& home) override {
    ROAM_ASSIGN(RemoteExport ex, parse_remote_export(export_path));
    if (mounted(home)) {
      // The same export still served: done. A dead mount of it (fenced, its
      // roamfs gone) is made again: the next epoch's roamfs, on the same
      // port with the same key, serves only a new session (a new Hello).
      if (relay_ && export_path == attached_ && verify_fuse_home(home)) return Status::ok();
      ROAM_TRY(detach(home));
    }
    ROAM_TRY(make_dirs(home));
    ROAM_ASSIGN(auto relay, Relay::open(ex, context_));
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return errno_error("cannot open /dev/fuse");
    const std::string opts = "fd=" + std::to_string(fd) +
                             ",rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other";
    if (::mount("roamfs:remote", home.c_str(), "fuse.roamfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      Status st = errno_error("cannot mount the remote disk at " + home);
      ::close(fd);
      return st;
    }
    relay->start(fd, home);
    relay_ = std::move(relay);
    attached_ = export_path;
    return verify_fuse_home(home);
  }

  Status detach(const std::string& home) override {
    ROAM_TRY(unmount_home(home));
    relay_.reset();  // the kernel wrote back what it had cached before the unmount returned
    attached_.clear();
    return Status::ok();
  }

  bool mounted(const std::string& home) const override { return home_mounted(home); }

 private:
  DriverContext context_;
  std::unique_ptr<Relay> relay_;
  std::string attached_;  // the export relay_ serves
};

}  // namespace

std::unique_ptr<MountDriver> make_remote_driver(const DriverContext& context) {
  return std::make_unique<RemoteDriver>(context);
}

Result<RemoteExport> parse_remote_export(const std::string& s) {
  const size_t hash = s.rfind('#');
  if (hash == std::string::npos || s.compare(0, 6, "tcp://") != 0)
    return Status::invalid("remote export '" + s + "' is not tcp://ADDR:PORT#KEY");
  ROAM_ASSIGN(std::string key, proto::key_from_hex(s.substr(hash + 1), "the remote export's key"));
  return RemoteExport{s.substr(0, hash), std::move(key)};
}

}  // namespace roam::agent
