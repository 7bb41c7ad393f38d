#include "broker/registry.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "protocol/protocol.h"

namespace roam::broker {

namespace {

constexpr const char* kTableNames[kTableCount] = {"users", "disks", "desktops", "attachments", "intents", "audit"};
constexpr size_t kMapSize = size_t{256} << 20;

MDB_dbi dbi_of(const MDB_dbi* dbis, Table t) { return dbis[static_cast<size_t>(t)]; }

}  // namespace

Result<Registry> Registry::open(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return Status::error(errno, "cannot create registry directory " + dir + ": " + std::strerror(errno));
  Registry r;
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
  uint64_t next = 1;
  {
    ROAM_ASSIGN(auto cursor, lmdb::Cursor::open(txn, dbi_of(dbi_, Table::kAudit)));
    ROAM_ASSIGN(auto last, cursor.seek_last());
    if (last) next = std::strtoull(std::string(last->key).c_str(), nullptr, 10) + 1;
  }
  char key[24];
  std::snprintf(key, sizeof key, "%020llu", static_cast<unsigned long long>(next));
  ROAM_TRY(txn.put(dbi_of(dbi_, Table::kAudit), key, proto::join_cells(row)));
  return txn.commit();
}

}  // namespace roam::broker
