// The control protocol's messages: how a Request and a Reply are encoded
// (fusefs/control/protocol.h, docs/control-socket.md). The socket that
// carries them is socket.cc.
#include "fusefs/control/protocol.h"

#include "fusefs/store/codec.h"

namespace roam::control {

using codec::put_bytes;
using codec::put_svarint;
using codec::put_varint;

namespace {

void put_identity(std::string& out, const Identity& who) {
  put_varint(out, who.uid);
  put_varint(out, who.gid);
  put_varint(out, who.pid);
  put_bytes(out, who.comm);
  put_varint(out, who.groups.size());
  for (uint32_t g : who.groups) put_varint(out, g);
}

void put_as(std::string& out, const AsUser& as) {
  out.push_back(as ? 1 : 0);
  if (as) put_identity(out, *as);
}

void put_optional_bytes(std::string& out, const std::optional<std::string>& v) {
  out.push_back(v ? 1 : 0);
  if (v) put_bytes(out, *v);
}

struct RequestEncoder {
  std::string& out;
  void operator()(const RestoreCall& r) const {
    out.push_back(static_cast<char>(Kind::kRestore));
    put_bytes(out, r.path);
    out.push_back(r.at_ns ? 1 : 2);
    if (r.at_ns) put_svarint(out, *r.at_ns);
    else put_varint(out, r.before_op.value_or(0));
    out.push_back(r.to ? 1 : 0);
    if (r.to) put_bytes(out, *r.to);
    out.push_back(r.dry_run ? 1 : 0);
    put_as(out, r.as);
  }
  void operator()(const HistoryCall& r) const {
    out.push_back(static_cast<char>(Kind::kHistory));
    put_bytes(out, r.path);
    put_as(out, r.as);
  }
  void operator()(const LogCall& r) const {
    out.push_back(static_cast<char>(Kind::kLog));
    put_optional_bytes(out, r.path);
    out.push_back(r.since_ns ? 1 : 0);
    if (r.since_ns) put_svarint(out, *r.since_ns);
    put_optional_bytes(out, r.by);
    put_varint(out, r.limit);
    put_as(out, r.as);
  }
  void operator()(const UndoRestoreCall& r) const {
    out.push_back(static_cast<char>(Kind::kUndoRestore));
    put_identity(out, r.as);
  }
  void operator()(const UndoCall& r) const {
    out.push_back(static_cast<char>(Kind::kUndo));
    put_optional_bytes(out, r.comm);
    out.push_back(r.pid ? 1 : 0);
    if (r.pid) put_varint(out, *r.pid);
    out.push_back(r.since_ns ? 1 : 0);
    if (r.since_ns) put_svarint(out, *r.since_ns);
    out.push_back(r.dry_run ? 1 : 0);
    put_as(out, r.as);
  }
  void operator()(const GcCall&) const { out.push_back(static_cast<char>(Kind::kGc)); }
  void operator()(const CheckpointCall&) const { out.push_back(static_cast<char>(Kind::kCheckpoint)); }
  void operator()(const RemoteFenceCall&) const { out.push_back(static_cast<char>(Kind::kRemoteFence)); }
  void operator()(const RemoteAllowCall& a) const {
    out.push_back(static_cast<char>(Kind::kRemoteAllow));
    put_bytes(out, a.key_hex);
    put_varint(out, a.epoch);
  }
  void operator()(const RetentionCall& r) const {
    out.push_back(static_cast<char>(Kind::kRetention));
    out.push_back(r.max_age_ns ? 1 : 0);
    if (r.max_age_ns) put_svarint(out, *r.max_age_ns);
    out.push_back(r.max_history_bytes ? 1 : 0);
    if (r.max_history_bytes) put_varint(out, *r.max_history_bytes);
    out.push_back(r.min_window_ns ? 1 : 0);
    if (r.min_window_ns) put_svarint(out, *r.min_window_ns);
  }
  void operator()(const QuotaCall& q) const {
    out.push_back(static_cast<char>(Kind::kQuota));
    out.push_back(q.quota_bytes ? 1 : 0);
    if (q.quota_bytes) put_varint(out, *q.quota_bytes);
  }
};

// A 0/1 presence byte; nullopt for anything else.
std::optional<bool> presence(codec::Reader& r) {
  const uint8_t b = r.byte();
  if (b > 1) return std::nullopt;
  return b == 1;
}

Status malformed(const char* what) { return Status::invalid(std::string("malformed ") + what + " request"); }

// At most this many supplementary groups (the kernel's NGROUPS_MAX).
constexpr uint64_t kMaxGroups = 65536;

std::optional<Identity> identity(codec::Reader& r) {
  Identity who;
  const uint64_t uid = r.varint(), gid = r.varint(), pid = r.varint();
  if (uid > UINT32_MAX || gid > UINT32_MAX || pid > UINT32_MAX) return std::nullopt;
  who.uid = static_cast<uint32_t>(uid);
  who.gid = static_cast<uint32_t>(gid);
  who.pid = static_cast<uint32_t>(pid);
  who.comm = std::string(r.bytes());
  const uint64_t n = r.varint();
  if (n > kMaxGroups) return std::nullopt;
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    const uint64_t g = r.varint();
    if (g > UINT32_MAX) return std::nullopt;
    who.groups.push_back(static_cast<uint32_t>(g));
  }
  return who;
}

// A presence byte and, when 1, an identity; false when malformed.
bool as_user(codec::Reader& r, AsUser& out) {
  const auto has = presence(r);
  if (!has) return false;
  if (!*has) return true;
  out = identity(r);
  return out.has_value();
}

bool optional_bytes(codec::Reader& r, std::optional<std::string>& out) {
  const auto has = presence(r);
  if (!has) return false;
  if (*has) out = std::string(r.bytes());
  return true;
}

Result<Request> decode_history(codec::Reader& r) {
  HistoryCall c;
  c.path = std::string(r.bytes());
  if (!as_user(r, c.as)) return malformed("history");
  return Request{std::move(c)};
}

Result<Request> decode_log(codec::Reader& r) {
  LogCall c;
  if (!optional_bytes(r, c.path)) return malformed("log");
  const auto has_since = presence(r);
  if (!has_since) return malformed("log");
  if (*has_since) c.since_ns = r.svarint();
  if (!optional_bytes(r, c.by)) return malformed("log");
  c.limit = r.varint();
  if (!as_user(r, c.as)) return malformed("log");
  return Request{std::move(c)};
}

Result<Request> decode_undo_restore(codec::Reader& r) {
  auto who = identity(r);
  if (!who) return malformed("undo-restore");
  return Request{UndoRestoreCall{std::move(*who)}};
}

Result<Request> decode_undo(codec::Reader& r) {
  UndoCall c;
  if (!optional_bytes(r, c.comm)) return malformed("undo");
  const auto has_pid = presence(r);
  if (!has_pid) return malformed("undo");
  if (*has_pid) {
    const uint64_t pid = r.varint();
    if (pid > UINT32_MAX) return malformed("undo");
    c.pid = static_cast<uint32_t>(pid);
  }
  if (c.comm.has_value() == c.pid.has_value()) return malformed("undo");
  const auto has_since = presence(r);
  if (!has_since) return malformed("undo");
  if (*has_since) c.since_ns = r.svarint();
  const auto dry_run = presence(r);
  if (!dry_run) return malformed("undo");
  c.dry_run = *dry_run;
  if (!as_user(r, c.as)) return malformed("undo");
  return Request{std::move(c)};
}

Result<Request> decode_restore(codec::Reader& r) {
  RestoreCall c;
  c.path = std::string(r.bytes());
  const uint8_t by = r.byte();
  if (by == 1) c.at_ns = r.svarint();
  else if (by == 2) c.before_op = r.varint();
  else return malformed("restore");
  const auto has_to = presence(r);
  if (!has_to) return malformed("restore");
  if (*has_to) c.to = std::string(r.bytes());
  const auto dry_run = presence(r);
  if (!dry_run) return malformed("restore");
  c.dry_run = *dry_run;
  if (!as_user(r, c.as)) return malformed("restore");
  return Request{std::move(c)};
}

Result<Request> decode_retention(codec::Reader& r) {
  RetentionCall c;
  const auto has_age = presence(r);
  if (!has_age) return malformed("retention");
  if (*has_age) c.max_age_ns = r.svarint();
  const auto has_space = presence(r);
  if (!has_space) return malformed("retention");
  if (*has_space) c.max_history_bytes = r.varint();
  const auto has_window = presence(r);
  if (!has_window) return malformed("retention");
  if (*has_window) c.min_window_ns = r.svarint();
  return Request{c};
}

Result<Request> decode_quota(codec::Reader& r) {
  QuotaCall c;
  const auto has_quota = presence(r);
  if (!has_quota) return malformed("quota");
  if (*has_quota) c.quota_bytes = r.varint();
  return Request{c};
}

Result<Request> decode_remote_allow(codec::Reader& r) {
  RemoteAllowCall c;
  c.key_hex = std::string(r.bytes());
  c.epoch = r.varint();
  return Request{c};
}

}  // namespace

std::string encode(const Request& req) {
  std::string out{static_cast<char>(kVersion)};
  std::visit(RequestEncoder{out}, req);
  return out;
}

Result<Request> decode_request(std::string_view bytes) {
  codec::Reader r(bytes);
  if (r.byte() != kVersion) return Status::invalid("unknown control protocol version");
  Result<Request> req = Status::invalid("unknown control request");
  switch (static_cast<Kind>(r.byte())) {
    case Kind::kRestore: req = decode_restore(r); break;
    case Kind::kGc: req = Request{GcCall{}}; break;
    case Kind::kRetention: req = decode_retention(r); break;
    case Kind::kCheckpoint: req = Request{CheckpointCall{}}; break;
    case Kind::kQuota: req = decode_quota(r); break;
    case Kind::kHistory: req = decode_history(r); break;
    case Kind::kLog: req = decode_log(r); break;
    case Kind::kUndoRestore: req = decode_undo_restore(r); break;
    case Kind::kUndo: req = decode_undo(r); break;
    case Kind::kRemoteAllow: req = decode_remote_allow(r); break;
    case Kind::kRemoteFence: req = Request{RemoteFenceCall{}}; break;
  }
  if (req && (!r.ok() || !r.at_end())) return Status::invalid("malformed control request");
  return req;
}

std::string encode(const Reply& rep) {
  std::string out{static_cast<char>(kVersion)};
  put_varint(out, static_cast<uint64_t>(rep.err));
  put_bytes(out, rep.message);
  put_bytes(out, rep.moment);
  put_varint(out, rep.seq);
  put_varint(out, rep.changes.size());
  for (const auto& c : rep.changes) {
    out.push_back(static_cast<char>(c.kind));
    put_bytes(out, c.path);
    put_bytes(out, c.what);
  }
  put_varint(out, rep.figures.size());
  for (const auto& [name, value] : rep.figures) {
    put_bytes(out, name);
    put_svarint(out, value);
  }
  // Rows only when there are some, so a reply without them reads as before.
  if (!rep.rows.empty()) {
    put_varint(out, rep.rows.size());
    for (const auto& row : rep.rows) {
      put_varint(out, row.size());
      for (const auto& cell : row) put_bytes(out, cell);
    }
  }
  return out;
}

Result<Reply> decode_reply(std::string_view bytes) {
  codec::Reader r(bytes);
  if (r.byte() != kVersion) return Status::invalid("unknown control protocol version in reply");
  Reply rep;
  rep.err = static_cast<int>(r.varint());
  rep.message = std::string(r.bytes());
  rep.moment = std::string(r.bytes());
  rep.seq = r.varint();
  const uint64_t n = r.varint();
  for (uint64_t i = 0; i < n && r.ok(); ++i) {
    const char kind = static_cast<char>(r.byte());
    if (kind != '+' && kind != '-' && kind != '~' && kind != '=') return Status::invalid("malformed reply");
    RestoreChange c{static_cast<RestoreChange::Kind>(kind), std::string(r.bytes()), std::string(r.bytes())};
    rep.changes.push_back(std::move(c));
  }
  const uint64_t figures = r.varint();
  for (uint64_t i = 0; i < figures && r.ok(); ++i) {
    std::string name(r.bytes());
    rep.figures.emplace_back(std::move(name), r.svarint());
  }
  const uint64_t rows = r.ok() && !r.at_end() ? r.varint() : 0;
  for (uint64_t i = 0; i < rows && r.ok(); ++i) {
    const uint64_t cells = r.varint();
    std::vector<std::string> row;
    for (uint64_t j = 0; j < cells && r.ok(); ++j) row.emplace_back(r.bytes());
    rep.rows.push_back(std::move(row));
  }
  if (!r.ok() || !r.at_end()) return Status::invalid("malformed reply from roamfs");
  return rep;
}

}  // namespace roam::control
