// Minimal JSON output for roamctl --json (strings escaped per RFC 8259):
// the protocol's, which `roam` shares.
#pragma once

#include "protocol/table.h"

namespace roam::ctl {

using proto::json_string;

}  // namespace roam::ctl
