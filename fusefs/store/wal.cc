#include "fusefs/store/wal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "base/sys/files.h"
#include "fusefs/store/codec.h"

namespace roam {

namespace {

void put_le32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint32_t get_le32(std::string_view s, size_t at) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

uint64_t get_le64(std::string_view s, size_t at) {
  uint64_t v = 0;
  std::memcpy(&v, s.data() + at, 8);
  return v;
}

// The checksum of a record: its length and lsn fields, then the payload,
// seeded with the generation so that an older generation's record never
// passes for one of the current generation.
uint64_t record_checksum(uint64_t generation, std::string_view head16, std::string_view payload) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset_withSeed(st, generation);
  XXH3_64bits_update(st, head16.data(), head16.size());
  XXH3_64bits_update(st, payload.data(), payload.size());
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

}  // namespace

Result<std::unique_ptr<Wal>> Wal::open(const std::string& store_dir, FileIo& io, std::string_view uuid) {
  const std::string path = store_dir + "/" + std::string(kWalFile);
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  ROAM_ASSIGN(int fd, io.open(path, O_RDWR | O_CREAT, 0600));
  std::unique_ptr<Wal> w(new Wal(path, io, fd, std::string(uuid)));
  if (!exists || st.st_size == 0) {
    ROAM_TRY(w->start(0));
    ROAM_TRY(sync_dir(store_dir));  // the name is as durable as the header
    return w;
  }
  ROAM_TRY(w->read_header());
  return w;
}

Wal::~Wal() { io_.close(fd_); }

std::string Wal::header(uint64_t generation) const {
  std::string h(kWalMagic);
  put_le32(h, kWalVersion);
  put_le32(h, 0);
  codec::put_fixed64(h, generation);
  h.append(uuid_.substr(0, 16));
  h.resize(kWalHeaderChecked, '\0');
  codec::put_fixed64(h, XXH3_64bits(h.data(), kWalHeaderChecked));
  h.resize(kWalHeaderSize, '\0');
  return h;
}

Status Wal::read_header() {
  std::string h(kWalHeaderSize, '\0');
  Status read = io_.pread_all(fd_, h.data(), h.size(), 0);
  if (!read) return Status::corrupt(path_ + ": the header is short (" + read.message() + ")");
  if (std::string_view(h).substr(0, kWalMagic.size()) != kWalMagic)
    return Status::corrupt(path_ + " is not a roamdisk write-ahead log");
  if (XXH3_64bits(h.data(), kWalHeaderChecked) != get_le64(h, kWalHeaderChecked))
    return Status::corrupt(path_ + ": the header's checksum does not match");
  const uint32_t version = get_le32(h, 16);
  if (version != kWalVersion)
    return Status::error(EPROTO, path_ + " has WAL version " + std::to_string(version) + "; this build reads " +
                                     std::to_string(kWalVersion));
  if (std::string_view(h).substr(32, 16) != std::string_view(uuid_).substr(0, 16))
    return Status::corrupt(path_ + " belongs to another store (its uuid differs)");
  generation_ = get_le64(h, 24);
  return Status::ok();
}

Result<uint64_t> Wal::replay(const std::function<Result<bool>(uint64_t lsn, std::string_view payload)>& apply) {
  uint64_t at = kWalHeaderSize, lsn = 1;
  std::string head(kWalRecordHeader, '\0'), payload;
  for (;; ++lsn) {
    if (!io_.pread_all(fd_, head.data(), head.size(), static_cast<off_t>(at))) break;  // end of file
    const uint32_t len = get_le32(head, 0);
    if (len == 0 || len > kWalMaxRecord || get_le64(head, 8) != lsn) break;
    payload.resize(len);
    if (!io_.pread_all(fd_, payload.data(), len, static_cast<off_t>(at + kWalRecordHeader))) break;
    if (record_checksum(generation_, std::string_view(head).substr(0, 16), payload) != get_le64(head, 16)) break;
    auto applied = apply(lsn, payload);
    if (!applied) return applied.status().with_context("replaying WAL record " + std::to_string(lsn));
    if (!*applied) break;
    at += kWalRecordHeader + len;
  }
  tail_ = at;
  next_lsn_ = lsn;
  return lsn - 1;
}

Status Wal::start(uint64_t generation) {
  struct stat st {};
  if (::fstat(fd_, &st) == 0 && static_cast<uint64_t>(st.st_size) > kWalKeepSize) {
    // Best effort: a WAL that grew during a long interval between
    // checkpoints gives the space back.
    if (::ftruncate(fd_, static_cast<off_t>(kWalKeepSize)) == 0) st.st_size = static_cast<off_t>(kWalKeepSize);
  }
  const std::string h = header(generation);
  ROAM_TRY(io_.pwrite_all(fd_, h.data(), h.size(), 0).with_context("writing " + path_));
  ROAM_TRY(io_.fdatasync(fd_).with_context("flushing " + path_));
  std::lock_guard lock(mu_);
  generation_ = generation;
  next_lsn_ = 1;
  tail_ = kWalHeaderSize;
  // Bytes already in the file past the header (an older generation's records,
  // zeros) are allocated blocks the new records overwrite.
  reserved_end_ = std::max<uint64_t>(kWalHeaderSize, static_cast<uint64_t>(st.st_size));
  // Everything appended before is now in the checkpoint.
  synced_.store(appended_.load());
  return Status::ok();
}

Status Wal::append(std::string_view payload) {
  if (payload.empty() || payload.size() > kWalMaxRecord)
    return Status::invalid("a WAL record of " + std::to_string(payload.size()) + " bytes");
  std::string rec;
  rec.reserve(kWalRecordHeader + payload.size());
  put_le32(rec, static_cast<uint32_t>(payload.size()));
  put_le32(rec, 0);
  codec::put_fixed64(rec, next_lsn_);
  codec::put_fixed64(rec, record_checksum(generation_, std::string_view(rec).substr(0, 16), payload));
  rec.append(payload);
  std::lock_guard lock(mu_);
  const uint64_t at = tail_.load(std::memory_order_relaxed);
  ROAM_TRY(io_.pwrite_all(fd_, rec.data(), rec.size(), static_cast<off_t>(at)).with_context("appending to " + path_));
  tail_.store(at + rec.size(), std::memory_order_relaxed);
  ++next_lsn_;
  appended_.fetch_add(1, std::memory_order_release);
  return Status::ok();
}

void Wal::top_up_reserve() {
  // Under mu_: appends write under it too, so none lands in a range while
  // these zeros are written over it.
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (reserved_end_ >= tail + kWalReserve / 4) return;
  static constexpr size_t kPiece = 64 * 1024;
  static const std::string kZeros(kPiece, '\0');
  const uint64_t want = tail + kWalReserve;
  for (uint64_t at = std::max(tail, reserved_end_); at < want; at += kPiece) {
    if (!io_.pwrite_all(fd_, kZeros.data(), kPiece, static_cast<off_t>(at))) return;  // a full disk: no reserve
    reserved_end_ = at + kPiece;
  }
}

Status Wal::sync() {
  // What this caller needs durable: every record appended before it asked.
  const uint64_t needed = appended_.load(std::memory_order_acquire);
  if (synced_.load() >= needed) return Status::ok();
  std::lock_guard sync_lock(sync_mu_);
  // Group commit: callers that queued behind a flush find their records
  // covered by it, or the first of them flushes for all who came since.
  if (synced_.load() >= needed) return Status::ok();
  const uint64_t flushing = appended_.load(std::memory_order_acquire);
  {
    std::lock_guard lock(mu_);
    top_up_reserve();
  }
  ROAM_TRY(io_.fdatasync(fd_).with_context("flushing " + path_));
  uint64_t seen = synced_.load();
  while (seen < flushing && !synced_.compare_exchange_weak(seen, flushing)) {
  }
  return Status::ok();
}

}  // namespace roam
