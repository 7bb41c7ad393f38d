#include "broker/registry.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "protocol/protocol.h"

namespace roam::broker {

namespace {

constexpr const char* kTableNames[kTableCount] = {"users", "disks", "desktops", "attachments", "intents", "audit"};
constexpr size_t kMapSize = size_t{256} << 20;

MDB_dbi dbi_of(const MDB_dbi* dbis, Table t) { return dbis[static_cast<size_t>(t)]; }

uint64_t audit_seq(std::string_view key) { return std::strtoull(std::string(key).c_str(), nullptr, 10); }

std::string audit_key(uint64_t seq) {
  char key[24];
  std::snprintf(key, sizeof key, "%020llu", static_cast<unsigned long long>(seq));
  return key;
}

}  // namespace

Result<Registry> Registry::open(const std::string& dir, uint64_t max_audit) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::error(errno, "cannot create registry directory " + dir + ": " + std::strerror(errno));
  Registry r;
  r.max_audit_ = std::max<uint64_t>(max_audit, 1);
  ROAM_ASSIGN(r.env_, lmdb::Env::open(dir, 0, kMapSize, kTableCount));
  ROAM_ASSIGN(auto txn, lmdb::Txn::begin(r.env_, false));
  for (size_t i = 0; i < kTableCount; ++i) {
    ROAM_ASSIGN(r.dbi_[i], txn.open_dbi(kTableNames[i], MDB_CREATE));
  }
  ROAM_TRY(txn.commit());
  return r;
}

Result<std::optional<Row>> Registry::get(Table t, const std::string& key) const {
  ROAM_ASSIGN(auto txn, lmdb::Txn::begin(env_, true));
  ROAM_ASSIGN(auto value, txn.get(dbi_of(dbi_, t), key));
  if (!value) return std::optional<Row>();
  return std::optional<Row>(proto::split_cells(*value));
}

Result<std::vector<std::pair<std::string, Row>>> Registry::list(Table t) const {
  ROAM_ASSIGN(auto txn, lmdb::Txn::begin(env_, true));
  ROAM_ASSIGN(auto cursor, lmdb::Cursor::open(txn, dbi_of(dbi_, t)));
  std::vector<std::pair<std::string, Row>> rows;
  ROAM_ASSIGN(auto entry, cursor.first());
  while (entry) {
    rows.emplace_back(std::string(entry->key), proto::split_cells(entry->value));
    ROAM_ASSIGN(entry, cursor.next());
  }
  return rows;
}

Status Registry::apply(const std::vector<Change>& changes) {
  ROAM_ASSIGN(auto txn, lmdb::Txn::begin(env_, false));
  for (const auto& c : changes) {
    if (c.row) {
      ROAM_TRY(txn.put(dbi_of(dbi_, c.table), c.key, proto::join_cells(*c.row)));
    } else {
      ROAM_TRY(txn.del(dbi_of(dbi_, c.table), c.key));
    }
  }
  return txn.commit();
}

Status Registry::append_audit(const Row& row) {
  ROAM_ASSIGN(auto txn, lmdb::Txn::begin(env_, false));
  const MDB_dbi audit = dbi_of(dbi_, Table::kAudit);
  uint64_t next = 1;
  {
    ROAM_ASSIGN(auto cursor, lmdb::Cursor::open(txn, audit));
    ROAM_ASSIGN(auto last, cursor.seek_last());
    if (last) next = audit_seq(last->key) + 1;
  }
  ROAM_TRY(txn.put(audit, audit_key(next), proto::join_cells(row)));
  // Records are numbered without gaps but for the oldest ones pruned, so
  // every record numbered at or below next - max_audit_ goes.
  for (;;) {
    ROAM_ASSIGN(auto cursor, lmdb::Cursor::open(txn, audit));
    ROAM_ASSIGN(auto first, cursor.first());
    if (!first || audit_seq(first->key) + max_audit_ > next) break;
    const std::string key(first->key);
    ROAM_TRY(txn.del(audit, key));
  }
  return txn.commit();
}

}  // namespace roam::broker
