// The broker's registry: users, disks, desktops, attachments, switch intents
// and audit records, in one LMDB environment of its own (STATE_DIR/registry).
//
// The registry stores rows (vectors of strings) under string keys; records.h
// gives the rows their meaning. Every apply() is one transaction committed
// with a sync, so a broker killed at any instant finds either all of a step's
// changes or none. Single-threaded: the broker's event loop is its only user.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/lmdb.h"

namespace roam::broker {

enum class Table { kUsers, kDisks, kDesktops, kAttachments, kIntents, kAudit };
inline constexpr size_t kTableCount = 6;

using Row = std::vector<std::string>;

// One change of apply(): put `row` under `key`, or delete `key` when row is nullopt.
struct Change {
  Table table;
  std::string key;
  std::optional<Row> row;
};

// The audit records kept: the oldest go as new ones come, so that the
// registry's map (256 MiB) never fills with them. A record is at most a few
// KiB (its cells are bounded by the broker protocol's field size).
inline constexpr uint64_t kMaxAuditRecords = 20000;

class Registry {
 public:
  // Opens (creating if needed) the registry in directory `dir`, keeping at
  // most `max_audit` audit records.
  static Result<Registry> open(const std::string& dir, uint64_t max_audit = kMaxAuditRecords);

  Result<std::optional<Row>> get(Table t, const std::string& key) const;
  Result<std::vector<std::pair<std::string, Row>>> list(Table t) const;
  // All changes in one durable transaction; on error none is applied.
  Status apply(const std::vector<Change>& changes);
  Status put(Table t, const std::string& key, Row row) { return apply({{t, key, std::move(row)}}); }
  Status del(Table t, const std::string& key) { return apply({{t, key, std::nullopt}}); }
  // Appends an audit row under the next sequence number (20 digits, so keys
  // sort) and, in the same transaction, drops the oldest rows beyond max_audit.
  Status append_audit(const Row& row);

 private:
  lmdb::Env env_;
  uint64_t max_audit_ = kMaxAuditRecords;
  MDB_dbi dbi_[kTableCount] = {};
};

}  // namespace roam::broker
