// encode/decode of the messages in protocol.h. Each message type has one
// Schema: its type tag, the kinds of its fields, and references to them; the
// encoder and the decoder are written once over those schemas.
#include <algorithm>
#include <array>
#include <optional>
#include <charconv>
#include <cstring>
#include <tuple>
#include <utility>

#include "protocol/protocol.h"

namespace roam::proto {

namespace {

using K = FieldKind;

template <typename T>
struct Schema;

#define ROAM_SCHEMA(T, TAG, NAME, ...)                               \
  template <>                                                        \
  struct Schema<T> {                                                 \
    static constexpr MessageType kType = MessageType::TAG;           \
    static constexpr std::string_view kName = NAME;                  \
    static constexpr std::array<K, std::tuple_size_v<decltype(refs(std::declval<T&>()))>> kKinds{__VA_ARGS__}; \
  }

// The fields of each message, in wire order.
inline auto refs(Register& m) { return std::tie(m.desktop, m.mount_driver); }
inline auto refs(Heartbeat&) { return std::tie(); }
inline auto refs(Damage& m) { return std::tie(m.reason); }
inline auto refs(DetachDone& m) { return std::tie(m.request_id, m.code, m.message); }
inline auto refs(AttachDone& m) { return std::tie(m.request_id, m.code, m.message); }
inline auto refs(Detach& m) { return std::tie(m.request_id, m.user, m.force, m.grace_ms); }
inline auto refs(Attach& m) { return std::tie(m.request_id, m.user, m.export_path); }
inline auto refs(SwitchRequest& m) { return std::tie(m.request_id, m.user, m.desktop, m.force); }
inline auto refs(StatusRequest& m) { return std::tie(m.request_id); }
inline auto refs(DesktopCreate& m) { return std::tie(m.request_id, m.desktop); }
inline auto refs(DesktopRemove& m) { return std::tie(m.request_id, m.desktop); }
inline auto refs(DesktopList& m) { return std::tie(m.request_id); }
inline auto refs(DiskCreate& m) { return std::tie(m.request_id, m.user); }
inline auto refs(DiskList& m) { return std::tie(m.request_id); }
inline auto refs(UserAdd& m) { return std::tie(m.request_id, m.user); }
inline auto refs(UserList& m) { return std::tie(m.request_id); }
inline auto refs(Reply& m) { return std::tie(m.request_id, m.code, m.message, m.rows); }
inline auto refs(AuditList& m) { return std::tie(m.request_id, m.limit); }
inline auto refs(DiskQuota& m) { return std::tie(m.request_id, m.user, m.bytes); }
inline auto refs(HistoryRequest& m) {
  return std::tie(m.request_id, m.user, m.uid, m.gid, m.groups, m.pid, m.comm, m.command, m.path, m.at, m.before_op,
                  m.to, m.since, m.by, m.limit, m.dry_run, m.by_pid);
}

ROAM_SCHEMA(Register, kRegister, "register", K::kName, K::kDriver);
ROAM_SCHEMA(Heartbeat, kHeartbeat, "heartbeat");
ROAM_SCHEMA(Damage, kDamage, "damage", K::kText);
ROAM_SCHEMA(DetachDone, kDetachDone, "detach-done", K::kU64, K::kU64, K::kText);
ROAM_SCHEMA(AttachDone, kAttachDone, "attach-done", K::kU64, K::kU64, K::kText);
ROAM_SCHEMA(Detach, kDetach, "detach", K::kU64, K::kName, K::kBool, K::kU64);
ROAM_SCHEMA(Attach, kAttach, "attach", K::kU64, K::kName, K::kExport);
ROAM_SCHEMA(SwitchRequest, kSwitchRequest, "switch-request", K::kU64, K::kName, K::kName, K::kBool);
ROAM_SCHEMA(StatusRequest, kStatusRequest, "status-request", K::kU64);
ROAM_SCHEMA(DesktopCreate, kDesktopCreate, "desktop-create", K::kU64, K::kName);
ROAM_SCHEMA(DesktopRemove, kDesktopRemove, "desktop-remove", K::kU64, K::kName);
ROAM_SCHEMA(DesktopList, kDesktopList, "desktop-list", K::kU64);
ROAM_SCHEMA(DiskCreate, kDiskCreate, "disk-create", K::kU64, K::kName);
ROAM_SCHEMA(DiskList, kDiskList, "disk-list", K::kU64);
ROAM_SCHEMA(UserAdd, kUserAdd, "user-add", K::kU64, K::kName);
ROAM_SCHEMA(UserList, kUserList, "user-list", K::kU64);
ROAM_SCHEMA(Reply, kReply, "reply", K::kU64, K::kU64, K::kText, K::kRows);
ROAM_SCHEMA(AuditList, kAuditList, "audit-list", K::kU64, K::kU64);
ROAM_SCHEMA(DiskQuota, kDiskQuota, "disk-quota", K::kU64, K::kName, K::kU64);
ROAM_SCHEMA(HistoryRequest, kHistoryRequest, "history-request", K::kU64, K::kText, K::kU64, K::kU64, K::kText, K::kU64,
            K::kText, K::kName, K::kText, K::kText, K::kU64, K::kText, K::kText, K::kText, K::kU64, K::kBool,
            K::kU64);
#undef ROAM_SCHEMA

// How many of a message's last fields a sender may leave out (fields added
// after the first release of the protocol); those keep their defaults.
template <typename T>
inline constexpr size_t kOptionalFields = 0;
template <>
inline constexpr size_t kOptionalFields<Register> = 1;  // mount_driver

// The variant's alternatives are in MessageType order, so the type byte is
// the alternative's index + 1; checked here once for all.
template <size_t... I>
constexpr bool tags_match_order(std::index_sequence<I...>) {
  return ((static_cast<size_t>(Schema<std::variant_alternative_t<I, Message>>::kType) == I + 1) && ...);
}
static_assert(tags_match_order(std::make_index_sequence<std::variant_size_v<Message>>{}));

Status bad(const std::string& what) { return Status::error(EPROTO, "malformed message: " + what); }

bool printable_no_nul(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

bool valid_path(std::string_view s) {
  if (s.empty() || s.size() > kMaxFieldBytes || s[0] != '/' || !printable_no_nul(s)) return false;
  std::string padded = std::string(s) + "/";
  return padded.find("/../") == std::string::npos && padded.find("/./") == std::string::npos;
}

Status parse(K kind, std::string_view f, std::string& out) {
  switch (kind) {
    case K::kName:
      if (!valid_name(f)) return bad("a name must be 1-64 of A-Z a-z 0-9 _ . - and not start with . or -");
      break;
    case K::kPath:
      if (!valid_path(f)) return bad("a path must be absolute, printable and without . or .. components");
      break;
    case K::kText:
      if (f.size() > kMaxFieldBytes || std::memchr(f.data(), 0, f.size()) != nullptr)
        return bad("a text field is longer than 4096 bytes or contains NUL");
      break;
    case K::kDriver:
      if (f != kMountDriverBind && f != kMountDriverRemote) return bad("a mount driver must be bind or remote");
      break;
    case K::kExport:
      if (!valid_path(f) && !valid_remote_export(f))
        return bad("an export must be an absolute path or tcp://HOST:PORT#KEY");
      break;
    default:
      return bad("field kind does not hold a string");
  }
  out.assign(f);
  return Status::ok();
}

Status parse(K kind, std::string_view f, uint64_t& out) {
  if (kind != K::kU64) return bad("field kind does not hold a number");
  if (f.empty() || f.size() > 20) return bad("a number must have 1 to 20 digits");
  auto [end, ec] = std::from_chars(f.data(), f.data() + f.size(), out);
  if (ec != std::errc() || end != f.data() + f.size()) return bad("a number must be decimal digits within 64 bits");
  return Status::ok();
}

Status parse(K kind, std::string_view f, bool& out) {
  if (kind != K::kBool || (f != "0" && f != "1")) return bad("a flag must be 0 or 1");
  out = f == "1";
  return Status::ok();
}

std::string format(const std::string& v) { return v; }
std::string format(uint64_t v) { return std::to_string(v); }
std::string format(bool v) { return v ? "1" : "0"; }

template <typename T>
Result<Message> decode_as(const std::vector<std::string_view>& frames) {
  T msg;
  auto fields = refs(msg);
  constexpr auto& kinds = Schema<T>::kKinds;
  constexpr bool has_rows = !kinds.empty() && kinds.back() == K::kRows;
  constexpr size_t fixed = kinds.size() - (has_rows ? 1 : 0);
  constexpr size_t required = fixed - kOptionalFields<T>;
  static_assert(!has_rows || kOptionalFields<T> == 0, "rows and optional fields do not mix");
  const size_t given = frames.size() - 2;
  if (given < required || (!has_rows && given > fixed))
    return bad(std::string(Schema<T>::kName) + " takes " +
               (required == fixed ? std::to_string(fixed) : std::to_string(required) + " to " + std::to_string(fixed)) +
               " fields, got " + std::to_string(given));
  Status st;
  size_t i = 0;
  std::apply(
      [&](auto&... field) {
        auto one = [&](auto& f) {
          if (!st) return;
          if constexpr (std::is_same_v<std::decay_t<decltype(f)>, std::vector<std::string>>) {
            for (size_t j = 2 + i; j < frames.size() && st; ++j) {
              std::string cell;
              st = parse(K::kText, frames[j], cell);
              f.push_back(std::move(cell));
            }
          } else if (2 + i < frames.size()) {
            st = parse(kinds[i], frames[2 + i], f);
          }  // else an optional field left out: its default stays
          ++i;
        };
        (one(field), ...);
        (void)one;  // a message without fields
      },
      fields);
  if (!st) return st;
  return Message(std::move(msg));
}

using Decoder = Result<Message> (*)(const std::vector<std::string_view>&);

template <size_t... I>
constexpr auto make_decoders(std::index_sequence<I...>) {
  return std::array<Decoder, sizeof...(I)>{&decode_as<std::variant_alternative_t<I, Message>>...};
}
constexpr auto kDecoders = make_decoders(std::make_index_sequence<std::variant_size_v<Message>>{});

}  // namespace

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxNameBytes || s[0] == '.' || s[0] == '-') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

// Letters, digits and the bytes of `extra`.
bool of_chars(std::string_view s, std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           extra.find(c) != std::string_view::npos;
  });
}

// Empty (the agent fills in its broker's host), a name or IPv4 address, or
// a bracketed IPv6 address.
bool valid_export_host(std::string_view h) {
  constexpr size_t kMaxHostBytes = 253;  // a DNS name's limit
  if (h.size() > kMaxHostBytes) return false;
  if (!h.empty() && h.front() == '[')
    return h.size() > 2 && h.back() == ']' &&
           of_chars(h.substr(1, h.size() - 2), ".:");
  return of_chars(h, ".-");
}

}  // namespace

bool valid_remote_export(std::string_view s) {
  constexpr std::string_view kScheme = "tcp://";
  constexpr size_t kKeyHexDigits = 64;
  if (s.substr(0, kScheme.size()) != kScheme) return false;
  s.remove_prefix(kScheme.size());
  const size_t hash = s.find('#');
  const size_t colon = s.substr(0, hash).rfind(':');
  if (hash == std::string_view::npos || colon == std::string_view::npos) return false;
  const std::string_view key = s.substr(hash + 1), port = s.substr(colon + 1, hash - colon - 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535)
    return false;
  return key.size() == kKeyHexDigits && is_hex(key) && valid_export_host(s.substr(0, colon));
}

std::vector<std::string> encode(const Message& m) {
  return std::visit(
      [](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        std::vector<std::string> frames{std::string(kMagic), std::string(1, static_cast<char>(Schema<T>::kType))};
        T copy = msg;
        std::apply(
            [&](auto&... field) {
              auto one = [&](auto& f) {
                if constexpr (std::is_same_v<std::decay_t<decltype(f)>, std::vector<std::string>>)
                  frames.insert(frames.end(), f.begin(), f.end());
                else
                  frames.push_back(format(f));
              };
              (one(field), ...);
        (void)one;  // a message without fields
            },
            refs(copy));
        return frames;
      },
      m);
}

Result<Message> decode(const std::vector<std::string_view>& frames) {
  if (frames.size() < 2) return bad("fewer than 2 frames (magic and type)");
  if (frames.size() > kMaxFrames) return bad("more than " + std::to_string(kMaxFrames) + " frames");
  size_t total = 0;
  for (auto f : frames) total += f.size();
  if (total > kMaxMessageBytes) return bad("larger than " + std::to_string(kMaxMessageBytes) + " bytes");
  if (frames[0] != kMagic) return bad("frame 0 is not \"ROAM1\" (wrong protocol or version)");
  if (frames[1].size() != 1) return bad("frame 1 must be one type byte");
  auto tag = static_cast<uint8_t>(frames[1][0]);
  if (tag == 0 || tag > kDecoders.size()) return bad("unknown message type " + std::to_string(tag));
  return kDecoders[tag - 1](frames);
}

MessageType type_of(const Message& m) { return static_cast<MessageType>(m.index() + 1); }

std::string_view type_name(MessageType t) {
  static constexpr auto kNames = []<size_t... I>(std::index_sequence<I...>) {
    return std::array<std::string_view, sizeof...(I)>{Schema<std::variant_alternative_t<I, Message>>::kName...};
  }(std::make_index_sequence<std::variant_size_v<Message>>{});
  auto i = static_cast<size_t>(t);
  return i >= 1 && i <= kNames.size() ? kNames[i - 1] : "unknown";
}

uint64_t request_id_of(const Message& m) {
  return std::visit(
      [](const auto& msg) -> uint64_t {
        if constexpr (requires { msg.request_id; })
          return msg.request_id;
        else
          return 0;
      },
      m);
}

namespace {

// Inside a cell, the bytes a row cannot carry as they are become kCellEscape
// and a letter: NUL (a frame's text cannot hold it), kCellSeparator and
// kCellEscape itself.
constexpr char kCellEscape = '\x1e';
constexpr char kEscapedNul = '0';
constexpr char kEscapedSeparator = 's';
constexpr char kEscapedEscape = 'e';

void put_cell(std::string& row, std::string_view cell) {
  for (char c : cell) {
    if (c == '\0' || c == kCellSeparator || c == kCellEscape) {
      row.push_back(kCellEscape);
      row.push_back(c == '\0' ? kEscapedNul : c == kCellSeparator ? kEscapedSeparator : kEscapedEscape);
    } else {
      row.push_back(c);
    }
  }
}

// The byte an escape letter stands for; nullopt for any other byte (a row
// written before cells were escaped keeps its kCellEscape as it was).
std::optional<char> unescaped(char letter) {
  switch (letter) {
    case kEscapedNul: return '\0';
    case kEscapedSeparator: return kCellSeparator;
    case kEscapedEscape: return kCellEscape;
    default: return std::nullopt;
  }
}

}  // namespace

std::string join_cells(const std::vector<std::string>& cells) {
  std::string row;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i) row.push_back(kCellSeparator);
    put_cell(row, cells[i]);
  }
  return row;
}

std::vector<std::string> split_cells(std::string_view row) {
  std::vector<std::string> cells(1);
  for (size_t i = 0; i < row.size(); ++i) {
    const char c = row[i];
    if (c == kCellSeparator) {
      cells.emplace_back();
    } else if (auto byte = c == kCellEscape && i + 1 < row.size() ? unescaped(row[i + 1]) : std::nullopt) {
      cells.back().push_back(*byte);
      ++i;
    } else {
      cells.back().push_back(c);
    }
  }
  return cells;
}

size_t bound_rows(std::vector<std::string>& rows) {
  // What a Reply spends besides its rows: magic, type, id, code and a
  // message of at most kMaxFieldBytes.
  constexpr size_t kReplyFrames = 5;
  constexpr size_t kReplyBytes = kMagic.size() + 1 + 20 + 20 + kMaxFieldBytes;
  size_t bytes = kReplyBytes;
  size_t kept = 0;
  for (auto& row : rows) {
    if (row.size() > kMaxFieldBytes) {
      row.resize(kMaxFieldBytes);
      if (row.back() == kCellEscape) row.pop_back();  // half an escaped byte
    }
    if (kept + kReplyFrames >= kMaxFrames || bytes + row.size() > kMaxMessageBytes) break;
    bytes += row.size();
    ++kept;
  }
  const size_t dropped = rows.size() - kept;
  rows.resize(kept);
  return dropped;
}

Reply reply_for(uint64_t request_id, const Status& s) {
  return Reply{request_id, static_cast<uint64_t>(s.err()), s.is_ok() ? "ok" : s.message(), {}};
}

int errno_of(uint64_t code) { return code != 0 && code < 4096 ? static_cast<int>(code) : EIO; }

Status status_of(const Reply& r) {
  if (r.code == 0) return Status::ok();
  return Status::error(errno_of(r.code), r.message);
}

}  // namespace roam::proto
