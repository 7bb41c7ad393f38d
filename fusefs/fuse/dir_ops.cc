// The directory callbacks: a listing is a snapshot taken at the first
// readdir (op_support.h).
#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

#include "fusefs/fuse/op_support.h"

namespace roam {

namespace {

// A readdirplus entry takes over this many bytes of the reply (its
// fuse_entry_out alone is 128), so a reply of n bytes holds fewer than
// n / kMinDirentPlusBytes + 1 entries.
constexpr size_t kMinDirentPlusBytes = 128;


// A directory listing taken at the first readdir, so that offsets stay stable
// while entries come and go (POSIX leaves those unspecified either way).
// Lifetime: freed by releasedir, which the kernel may send the moment a
// readdir reply is out, so no callback touches it after replying.
struct DirHandle {
  std::mutex mu;
  std::vector<std::pair<std::string, Dirent>> entries;
  bool loaded = false;
};

DirHandle* dir_of(fuse_file_info* fi) { return reinterpret_cast<DirHandle*>(fi->fh); }

// Serves readdir and readdirplus from the handle's snapshot. Offsets are
// indexes into the snapshot plus one; "." and ".." come first.
// Fills `buf` from the handle's snapshot; returns the bytes used. Must not
// reply: the caller replies after letting go of the handle, because once the
// reply is sent the kernel may release the directory and free the handle.
Result<size_t> fill_readdir(fuse_req_t req, fuse_ino_t ino, std::vector<char>& buf, off_t off, DirHandle& dh,
                            bool plus) {
  std::lock_guard lock(dh.mu);
  if (!dh.loaded || off == 0) {
    ROAM_ASSIGN(Inode self, ctx(req).fs.getattr(ino));
    ROAM_ASSIGN(auto entries, ctx(req).fs.readdir(ino, "", SIZE_MAX));
    dh.entries.clear();
    dh.entries.emplace_back(".", Dirent{ino, S_IFDIR});
    dh.entries.emplace_back("..", Dirent{self.parent ? self.parent : ino, S_IFDIR});
    for (auto& e : entries) dh.entries.push_back(std::move(e));
    dh.loaded = true;
  }
  const size_t size = buf.size();
  const size_t first = std::min(static_cast<size_t>(off), dh.entries.size());
  // At most this many entries fit in the reply, so readdirplus reads their
  // inodes in one transaction.
  const size_t last = plus ? std::min(dh.entries.size(), first + size / kMinDirentPlusBytes + 1) : dh.entries.size();
  std::vector<std::optional<Inode>> inodes;
  if (plus) {
    std::vector<uint64_t> inos;
    for (size_t i = first; i < last; ++i) inos.push_back(dh.entries[i].second.ino);
    ROAM_ASSIGN(inodes, ctx(req).fs.getattrs(inos));
  }
  size_t used = 0;
  for (size_t i = first; i < last; ++i) {
    const auto& [name, d] = dh.entries[i];
    size_t n;
    if (plus) {
      fuse_entry_param e{};
      if (name != "." && name != "..") {
        const auto& inode = inodes[i - first];
        if (!inode) continue;  // removed since the snapshot
        e = to_entry(req, *inode);
      } else {  // ino 0: the kernel makes no dentry for these
        e.attr.st_ino = d.ino;
        e.attr.st_mode = d.type;
      }
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name.c_str(), &e, static_cast<off_t>(i + 1));
    } else {
      struct stat st {};
      st.st_ino = d.ino;
      st.st_mode = d.type;
      n = fuse_add_direntry(req, buf.data() + used, size - used, name.c_str(), &st, static_cast<off_t>(i + 1));
    }
    if (n > size - used) break;
    used += n;
  }
  return used;
}

// Offsets are indexes into the snapshot plus one; "." and ".." come first.
void serve_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
  std::vector<char> buf(size);
  auto used = fill_readdir(req, ino, buf, off, *dir_of(fi), plus);
  if (!used) return reply_status(req, used.status());
  fuse_reply_buf(req, buf.data(), *used);
}

}  // namespace

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto r = ctx(req).fs.getattr(ino);
  if (!r) return reply_status(req, r.status());
  if (!S_ISDIR(r->mode)) return static_cast<void>(fuse_reply_err(req, ENOTDIR));
  fi->fh = reinterpret_cast<uint64_t>(new DirHandle);
  fi->cache_readdir = 0;
  if (fuse_reply_open(req, fi) == -ENOENT) delete dir_of(fi);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  serve_readdir(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  serve_readdir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  delete dir_of(fi);
  fuse_reply_err(req, 0);
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { reply_status(req, ctx(req).fs.sync()); }

}  // namespace roam
