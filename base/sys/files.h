// Small file-system calls shared by the store and the daemons (roam-broker,
// roam-agent).
#pragma once

#include <string>

#include "base/status.h"

namespace roam {

// errno (as it is now) as a Status: "WHAT: strerror".
Status errno_error(const std::string& what);

// mkdir -p with mode 0755; EEXIST on the way is fine.
Status make_dirs(const std::string& path);

// fsync of a directory: the names created in it survive a power loss.
Status sync_dir(const std::string& dir);

}  // namespace roam
