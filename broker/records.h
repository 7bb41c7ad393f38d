// What the registry's rows mean: one struct per table, with its row form.
// from_row() of a row that does not have the expected cells is a corrupt
// registry (EIO naming the table and key), never a silently empty record.
#pragma once

#include <cstdint>
#include <string>

#include "broker/registry.h"

namespace roam::broker {

// Key: user name. One user disk per user; its store lives at `store`.
// Rows written before remote attach have no port (0).
struct DiskRecord {
  std::string store;
  uint64_t epoch = 0;  // the last attachment epoch handed out
  uint16_t remote_port = 0;  // where its roamfs listens for remote desktops; 0: none chosen yet
};

// Key: desktop id.
// Rows written before remote attach have neither driver nor registered key:
// they read as "bind" and "".
struct DesktopRecord {
  std::string state = "ok";   // "ok", or "damaged" once its agent reported damage or died
  std::string public_key;     // hex key enrolled by the broker's provisioner; empty when the
                              // key comes from the broker's configuration
  std::string driver = "bind";  // the mount driver its agent last registered with (proto::Register)
  std::string registered_key;   // hex key that agent registered with: the one a remote roamfs allows
};

// Key: user name. Where the user's disk is served and to which desktop.
struct AttachmentRecord {
  std::string desktop;      // empty: exported but not attached to any desktop
  uint64_t epoch = 0;
  std::string mount_point;  // host path where this epoch's roamfs is mounted
  int64_t roamfs_pid = 0;
  // For a remote desktop: what its Attach names, "tcp://HOST:PORT#KEY"
  // (HOST may be empty, proto::Attach); empty for a bind mount.
  std::string remote_export;
};

// Key: user name. A switch in progress; present from the moment the broker
// commits to it until it ends, so a restarted broker can finish it.
struct IntentRecord {
  uint64_t switch_id = 0;
  std::string source;  // may be empty (disk not attached)
  std::string target;
  std::string reason;  // "request", "damage", "dead", "recovery"
  std::string phase;   // SwitchPhase name (switch.h)
  int64_t started_ns = 0;
  std::string steps;   // "name=ms,name=ms" time of each step since started_ns
  bool force = true;
};

Row to_row(const DiskRecord& r);
Row to_row(const DesktopRecord& r);
Row to_row(const AttachmentRecord& r);
Row to_row(const IntentRecord& r);

Result<DiskRecord> disk_from_row(const std::string& key, const Row& row);
Result<DesktopRecord> desktop_from_row(const std::string& key, const Row& row);
Result<AttachmentRecord> attachment_from_row(const std::string& key, const Row& row);
Result<IntentRecord> intent_from_row(const std::string& key, const Row& row);

// Typed lookups; nullopt when the key is absent.
Result<std::optional<DiskRecord>> find_disk(const Registry& reg, const std::string& user);
Result<std::optional<DesktopRecord>> find_desktop(const Registry& reg, const std::string& id);
Result<std::optional<AttachmentRecord>> find_attachment(const Registry& reg, const std::string& user);

// The user whose disk is attached to `desktop`, if any.
Result<std::optional<std::string>> user_on_desktop(const Registry& reg, const std::string& desktop);

// `text` cut to 1 KiB ("..." at the end when cut): an agent's message (busy
// processes) or a user's path may be long, and an audit row must fit a reply
// row (proto::kMaxFieldBytes).
std::string bounded_cell(std::string text);

// Nanoseconds since the epoch (CLOCK_REALTIME), for records.
int64_t now_ns();

}  // namespace roam::broker
