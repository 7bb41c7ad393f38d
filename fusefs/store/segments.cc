#include "fusefs/store/segments.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
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
  for (auto& [id, fd] : fds_) io_.close(fd);
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
  ROAM_ASSIGN(int fd, s->fd_of(last));
  struct stat st {};
  ::fstat(fd, &st);
  s->current_ = last;
  s->tail_ = static_cast<uint64_t>(st.st_size);
  s->sealed_bytes_ -= s->tail_;
  return s;
}

Result<int> Segments::fd_of(uint32_t segment) {
  if (auto it = fds_.find(segment); it != fds_.end()) return it->second;
  ROAM_ASSIGN(int fd, io_.open(path_of(segment), read_only_ ? O_RDONLY : O_RDWR, 0));
  fds_.emplace(segment, fd);
  return fd;
}

Status Segments::start_segment(uint32_t segment) {
  ROAM_ASSIGN(int fd, io_.open(path_of(segment), O_RDWR | O_CREAT | O_EXCL, 0600));
  fds_.emplace(segment, fd);
  sealed_bytes_ += tail_;
  current_ = segment;
  tail_ = 0;
  return Status::ok();
}

Result<SegmentLocation> Segments::append(std::string_view data) {
  if (read_only_) return Status::error(EROFS, "the store is open read-only");
  SegmentLocation loc;
  int fd;
  {
    std::lock_guard lock(mu_);
    if (tail_ >= kSegmentTargetSize) ROAM_TRY(start_segment(current_ + 1));
    loc = {current_, tail_};
    tail_ += data.size();
    ROAM_ASSIGN(fd, fd_of(current_));
    dirty_.insert(current_);
  }
  ROAM_TRY(io_.pwrite_all(fd, data.data(), data.size(), static_cast<off_t>(loc.offset))
               .with_context("appending to " + path_of(loc.segment)));
  return loc;
}

Status Segments::read(SegmentLocation loc, char* buf, size_t len) {
  int fd;
  {
    std::lock_guard lock(mu_);
    ROAM_ASSIGN(fd, fd_of(loc.segment));
  }
  return io_.pread_all(fd, buf, len, static_cast<off_t>(loc.offset)).with_context("reading " + path_of(loc.segment));
}

Status Segments::sync() {
  std::vector<int> fds;
  {
    std::lock_guard lock(mu_);
    for (uint32_t id : dirty_) fds.push_back(fds_.at(id));
    dirty_.clear();
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    if (Status s = io_.fdatasync(fds[i]); !s) {
      // Keep them dirty: the next sync() must try again.
      std::lock_guard lock(mu_);
      for (auto& [id, fd] : fds_)
        if (std::find(fds.begin() + static_cast<long>(i), fds.end(), fd) != fds.end()) dirty_.insert(id);
      return s.with_context("syncing segments");
    }
  }
  return Status::ok();
}

uint64_t Segments::bytes_used() const {
  std::lock_guard lock(mu_);
  return sealed_bytes_ + tail_;
}

}  // namespace roam
