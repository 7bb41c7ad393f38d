#include "broker/records.h"

#include <charconv>
#include <ctime>

#include "protocol/protocol.h"

namespace roam::broker {

namespace {

Status corrupt(const char* table, const std::string& key) {
  return Status::corrupt(std::string("registry ") + table + " record '" + key + "' has unexpected cells");
}

template <typename Int>
bool to_int(const std::string& s, Int& out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

int64_t now_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

Row to_row(const DiskRecord& r) { return {r.store, std::to_string(r.epoch), std::to_string(r.remote_port)}; }
Row to_row(const DesktopRecord& r) { return {r.state, r.public_key, r.driver, r.registered_key}; }
Row to_row(const AttachmentRecord& r) {
  return {r.desktop, std::to_string(r.epoch), r.mount_point, std::to_string(r.roamfs_pid), r.remote_export};
}
Row to_row(const IntentRecord& r) {
  return {std::to_string(r.switch_id), r.source, r.target, r.reason, r.phase, std::to_string(r.started_ns),
          r.steps, r.force ? "1" : "0"};
}

// Each table's rows gained cells at the end since the first release; a row
// of an older broker has fewer, and those cells keep their defaults.
Result<DiskRecord> disk_from_row(const std::string& key, const Row& row) {
  DiskRecord r;
  if (row.size() < 2 || row.size() > 3 || !to_int(row[1], r.epoch) ||
      (row.size() == 3 && !to_int(row[2], r.remote_port)))
    return corrupt("disk", key);
  r.store = row[0];
  return r;
}

Result<DesktopRecord> desktop_from_row(const std::string& key, const Row& row) {
  if (row.size() != 2 && row.size() != 4) return corrupt("desktop", key);
  DesktopRecord r{row[0], row[1]};
  if (row.size() == 4) {
    if (row[2] != proto::kMountDriverBind && row[2] != proto::kMountDriverRemote) return corrupt("desktop", key);
    r.driver = row[2];
    r.registered_key = row[3];
  }
  return r;
}

Result<AttachmentRecord> attachment_from_row(const std::string& key, const Row& row) {
  AttachmentRecord r;
  if (row.size() < 4 || row.size() > 5 || !to_int(row[1], r.epoch) || !to_int(row[3], r.roamfs_pid))
    return corrupt("attachment", key);
  r.desktop = row[0];
  r.mount_point = row[2];
  if (row.size() == 5) r.remote_export = row[4];
  return r;
}

Result<IntentRecord> intent_from_row(const std::string& key, const Row& row) {
  IntentRecord r;
  if (row.size() != 8 || !to_int(row[0], r.switch_id) || !to_int(row[5], r.started_ns))
    return corrupt("intent", key);
  r.source = row[1];
  r.target = row[2];
  r.reason = row[3];
  r.phase = row[4];
  r.steps = row[6];
  r.force = row[7] == "1";
  return r;
}

namespace {

template <typename Rec, typename Parse>
Result<std::optional<Rec>> find(const Registry& reg, Table t, const std::string& key, Parse parse) {
  ROAM_ASSIGN(auto row, reg.get(t, key));
  if (!row) return std::optional<Rec>();
  ROAM_ASSIGN(auto rec, parse(key, *row));
  return std::optional<Rec>(std::move(rec));
}

}  // namespace

Result<std::optional<DiskRecord>> find_disk(const Registry& reg, const std::string& user) {
  return find<DiskRecord>(reg, Table::kDisks, user, disk_from_row);
}
Result<std::optional<DesktopRecord>> find_desktop(const Registry& reg, const std::string& id) {
  return find<DesktopRecord>(reg, Table::kDesktops, id, desktop_from_row);
}
Result<std::optional<AttachmentRecord>> find_attachment(const Registry& reg, const std::string& user) {
  return find<AttachmentRecord>(reg, Table::kAttachments, user, attachment_from_row);
}

Result<std::optional<std::string>> user_on_desktop(const Registry& reg, const std::string& desktop) {
  ROAM_ASSIGN(auto rows, reg.list(Table::kAttachments));
  for (const auto& [user, row] : rows) {
    ROAM_ASSIGN(auto a, attachment_from_row(user, row));
    if (a.desktop == desktop) return std::optional<std::string>(user);
  }
  return std::optional<std::string>();
}

std::string bounded_cell(std::string text) {
  constexpr size_t kMaxAuditCell = 1024;
  if (text.size() > kMaxAuditCell) {
    text.resize(kMaxAuditCell - 3);
    text += "...";
  }
  return text;
}

}  // namespace roam::broker
