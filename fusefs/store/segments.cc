#include "fusefs/store/segments.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "fusefs/store/format.h"

namespace roam {

namespace {
// Parses "NNNNNNNN.seg"; returns false for anything else.
bool parse_segment_name(const char* name, uint32_t& id) {
  unsigned v = 0;
  int used = 0;
  if (std::sscanf(name, "%8u.seg%n", &v, &used) != 1 || used != 12 || name[used] != '\0') return false;
  id = v;
  return true;
}
}  // namespace

Segments::~Segments() {
  std::lock_guard lock(mu_);
  drop_reserve();
}

void Segments::drop_reserve() {
  // Should this fail, or the process die first, the zeros stay as garbage
  // that the next open resumes after and compaction removes.
  if (read_only_ || reserved_end_ <= tail_) return;
  auto it = files_.find(current_);
  if (it != files_.end() && ::ftruncate(it->second->fd, static_cast<off_t>(tail_)) == 0) reserved_end_ = tail_;
}

std::string Segments::path_of(uint32_t segment) const {
  char name[32];
  std::snprintf(name, sizeof name, "/%08u.seg", segment);
  return dir_ + name;
}

Result<std::unique_ptr<Segments>> Segments::open(const std::string& dir, FileIo& io, bool read_only) {
  std::unique_ptr<Segments> s(new Segments(dir, io, read_only));
  std::vector<uint32_t> ids;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::error(errno, "opening segment directory " + dir + ": " + std::strerror(errno));
  while (dirent* e = ::readdir(d)) {
    uint32_t id;
    if (parse_segment_name(e->d_name, id)) ids.push_back(id);
  }
  ::closedir(d);
  std::lock_guard lock(s->mu_);
  s->ids_.insert(ids.begin(), ids.end());
  if (ids.empty()) {
    if (!read_only) ROAM_TRY(s->start_segment(1));
    return s;
  }
  uint32_t last = 0;
  for (uint32_t id : ids) {
    struct stat st {};
    if (::stat(s->path_of(id).c_str(), &st) < 0)
      return Status::error(errno, "stat " + s->path_of(id) + ": " + std::strerror(errno));
    if (id > last) last = id;
    s->sealed_bytes_ += static_cast<uint64_t>(st.st_size);
  }
  ROAM_ASSIGN(auto file, s->file_of(last));
  struct stat st {};
  ::fstat(file->fd, &st);
  s->current_ = last;
  s->tail_ = s->reserved_end_ = static_cast<uint64_t>(st.st_size);
  s->sealed_bytes_ -= s->tail_;
  return s;
}

Result<std::shared_ptr<Segments::File>> Segments::file_of(uint32_t segment) {
  if (auto it = files_.find(segment); it != files_.end()) return it->second;
  if (removed_.count(segment)) return Status::error(ESTALE, "segment " + std::to_string(segment) + " was compacted away");
  auto opened = io_.open(path_of(segment), read_only_ ? O_RDONLY : O_RDWR, 0);
  // A read-only opener (roamctl) may race with compaction in roamfs.
  if (!opened && opened.status().err() == ENOENT)
    return Status::error(ESTALE, "segment " + std::to_string(segment) + " was compacted away");
  if (!opened) return opened.status();
  auto file = std::make_shared<File>(io_, *opened);
  files_.emplace(segment, file);
  return file;
}

Status Segments::start_segment(uint32_t segment) {
  ROAM_ASSIGN(int fd, io_.open(path_of(segment), O_RDWR | O_CREAT | O_EXCL, 0600));
  files_.emplace(segment, std::make_shared<File>(io_, fd));
  new_segment_ = true;
  ids_.insert(segment);
  drop_reserve();
  sealed_bytes_ += std::max(tail_, reserved_end_);
  current_ = segment;
  tail_ = reserved_end_ = 0;
  return Status::ok();
}

Result<SegmentLocation> Segments::append(std::string_view data) {
  if (read_only_) return Status::error(EROFS, "the store is open read-only");
  SegmentLocation loc;
  std::shared_ptr<File> file;
  {
    std::lock_guard lock(mu_);
    if (tail_ >= kSegmentTargetSize) ROAM_TRY(start_segment(current_ + 1));
    loc = {current_, tail_};
    tail_ += data.size();
    ROAM_ASSIGN(file, file_of(current_));
    dirty_.insert(current_);
    ++pending_[current_];
  }
  if (Status s = io_.pwrite_all(file->fd, data.data(), data.size(), static_cast<off_t>(loc.offset)); !s) {
    settle(loc);
    return s.with_context("appending to " + path_of(loc.segment));
  }
  return loc;
}

Status Segments::restore(SegmentLocation loc, std::string_view data) {
  if (read_only_) return Status::error(EROFS, "the store is open read-only");
  std::shared_ptr<File> file;
  {
    std::lock_guard lock(mu_);
    if (!ids_.count(loc.segment)) {
      ROAM_ASSIGN(int fd, io_.open(path_of(loc.segment), O_RDWR | O_CREAT, 0600));
      files_.emplace(loc.segment, std::make_shared<File>(io_, fd));
      ids_.insert(loc.segment);
      new_segment_ = true;
    }
    if (loc.segment > current_) {
      sealed_bytes_ += std::max(tail_, reserved_end_);
      current_ = loc.segment;
      tail_ = reserved_end_ = 0;
    }
    if (loc.segment == current_) {
      tail_ = std::max(tail_, loc.offset + data.size());
      reserved_end_ = std::max(reserved_end_, tail_);
    }
    ROAM_ASSIGN(file, file_of(loc.segment));
    dirty_.insert(loc.segment);
  }
  return io_.pwrite_all(file->fd, data.data(), data.size(), static_cast<off_t>(loc.offset))
      .with_context("restoring data in " + path_of(loc.segment));
}

void Segments::settle(SegmentLocation loc) {
  std::lock_guard lock(mu_);
  auto it = pending_.find(loc.segment);
  if (it != pending_.end() && --it->second == 0) pending_.erase(it);
}

Status Segments::read(SegmentLocation loc, char* buf, size_t len) {
  std::shared_ptr<File> file;
  {
    std::lock_guard lock(mu_);
    ROAM_ASSIGN(file, file_of(loc.segment));
  }
  return io_.pread_all(file->fd, buf, len, static_cast<off_t>(loc.offset)).with_context("reading " + path_of(loc.segment));
}

Status Segments::sync() {
  std::vector<std::pair<uint32_t, std::shared_ptr<File>>> files;
  bool new_segment = false;
  {
    std::lock_guard lock(mu_);
    if (dirty_.count(current_)) top_up_reserve();
    for (uint32_t id : dirty_) files.emplace_back(id, files_.at(id));
    dirty_.clear();
    new_segment = std::exchange(new_segment_, false);
  }
  if (new_segment) {
    // A new segment's name must be as durable as the blobs in it.
    Status synced = sync_directory();
    if (!synced) {
      // Nothing was synced: all of it stays dirty for the next sync().
      std::lock_guard lock(mu_);
      new_segment_ = true;
      for (const auto& file : files) dirty_.insert(file.first);
      return synced.with_context("syncing the segment directory");
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    if (Status s = io_.fdatasync(files[i].second->fd); !s) {
      // Keep them dirty: the next sync() must try again.
      std::lock_guard lock(mu_);
      for (size_t j = i; j < files.size(); ++j) dirty_.insert(files[j].first);
      return s.with_context("syncing segments");
    }
  }
  return Status::ok();
}

void Segments::top_up_reserve() {
  // Under mu_: an append claims its range under mu_ too, so none can claim
  // (and write) a range here before these zeros are in place.
  const uint64_t want = std::min(tail_ + kSegmentReserve, kSegmentTargetSize);
  if (reserved_end_ >= tail_ + kSegmentReserve / 4 || want <= tail_) return;
  const int fd = files_.at(current_)->fd;
  static constexpr size_t kPiece = 64 * 1024;
  static const std::string kZeros(kPiece, '\0');
  for (uint64_t at = std::max(tail_, reserved_end_); at < want;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kPiece, want - at));
    if (!io_.pwrite_all(fd, kZeros.data(), n, static_cast<off_t>(at))) return;  // a full disk: no reserve
    at += n;
    reserved_end_ = at;
  }
}

Status Segments::sync_directory() {
  ROAM_ASSIGN(int fd, io_.open(dir_, O_RDONLY | O_DIRECTORY, 0));
  Status synced = io_.fdatasync(fd);
  io_.close(fd);
  return synced;
}

std::map<uint32_t, uint64_t> Segments::sizes() const {
  std::lock_guard lock(mu_);
  std::map<uint32_t, uint64_t> out;
  for (uint32_t id : ids_) {
    struct stat st {};
    auto it = files_.find(id);
    const int rc = it != files_.end() ? ::fstat(it->second->fd, &st) : ::stat(path_of(id).c_str(), &st);
    if (rc == 0) out[id] = static_cast<uint64_t>(st.st_size);
  }
  return out;
}

uint32_t Segments::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

Status Segments::roll() {
  if (read_only_) return Status::error(EROFS, "the store is open read-only");
  std::lock_guard lock(mu_);
  return tail_ == 0 ? Status::ok() : start_segment(current_ + 1);
}

Status Segments::retire(uint32_t segment) {
  if (read_only_) return Status::error(EROFS, "the store is open read-only");
  std::lock_guard lock(mu_);
  if (segment >= current_) return Status::invalid("the current segment cannot be removed");
  if (pending_.count(segment)) return Status::error(EBUSY, "segment " + std::to_string(segment) + " has appends in flight");
  struct stat st {};
  auto it = files_.find(segment);
  const int rc = it != files_.end() ? ::fstat(it->second->fd, &st) : ::stat(path_of(segment).c_str(), &st);
  if (rc == 0) sealed_bytes_ -= std::min(sealed_bytes_, static_cast<uint64_t>(st.st_size));
  files_.erase(segment);  // open readers keep the file until they finish
  ids_.erase(segment);
  dirty_.erase(segment);
  removed_.insert(segment);
  return Status::ok();
}

Status Segments::delete_retired(uint32_t segment) {
  if (::unlink(path_of(segment).c_str()) < 0 && errno != ENOENT)
    return Status::error(errno, "removing " + path_of(segment) + ": " + std::strerror(errno));
  return Status::ok();
}

uint64_t Segments::bytes_used() const {
  std::lock_guard lock(mu_);
  return sealed_bytes_ + std::max(tail_, reserved_end_);
}

}  // namespace roam
