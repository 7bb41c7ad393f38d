// roamfs_ops_with_history (history_dir.h): the live callback table with the
// `.history` inodes routed to HistoryDir. Each callback only decides where a
// request goes; the live callbacks stay as they are (fuse/ops.cc).
#include <algorithm>
#include <string_view>

#include "fusefs/fuse/history_dir.h"
#include "fusefs/fuse/op_support.h"

namespace roam {

namespace {

using time_travel::is_history_ino;

const fuse_lowlevel_ops& live() { return roamfs_ops(); }

HistoryDir& history(fuse_req_t req) { return *ctx(req).history; }

// `.history` in the root means the time-travel directory unless the disk
// holds a real entry of that name (a store from before .history, or one
// made while it was switched off with --no-history-dir: tcsh keeps its
// history in ~/.history): then the live entry wins, so none of the user's
// files is ever hidden, and time travel steps aside for that disk. The live
// lookup costs one read, and only for that one name.
bool is_dir_entry(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != kRootIno || std::string_view(name) != time_travel::kDirName) return false;
  auto live_entry = ctx(req).fs.lookup(kRootIno, name);
  return !live_entry && live_entry.status().err() == ENOENT;
}
// A name that would change .history or a view if created, removed or renamed.
bool is_past_name(fuse_req_t req, fuse_ino_t parent, const char* name) {
  return is_history_ino(parent) || is_dir_entry(req, parent, name);
}

void refuse(fuse_req_t req) { fuse_reply_err(req, EROFS); }

void h_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (is_dir_entry(req, parent, name)) return history(req).lookup_dir(req);
  if (is_history_ino(parent)) return history(req).lookup(req, parent, name);
  live().lookup(req, parent, name);
}

void h_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_history_ino(ino)) return history(req).getattr(req, ino);
  live().getattr(req, ino, fi);
}

void h_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  if (is_history_ino(ino)) return refuse(req);
  live().setattr(req, ino, attr, to_set, fi);
}

void h_readlink(fuse_req_t req, fuse_ino_t ino) {
  if (is_history_ino(ino)) return history(req).readlink(req, ino);
  live().readlink(req, ino);
}

void h_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  if (is_past_name(req, parent, name)) return refuse(req);
  live().mknod(req, parent, name, mode, rdev);
}

void h_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (is_past_name(req, parent, name)) return refuse(req);
  live().mkdir(req, parent, name, mode);
}

void h_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (is_past_name(req, parent, name)) return refuse(req);
  live().unlink(req, parent, name);
}

void h_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (is_past_name(req, parent, name)) return refuse(req);
  live().rmdir(req, parent, name);
}

void h_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  if (is_past_name(req, parent, name)) return refuse(req);
  live().symlink(req, target, parent, name);
}

void h_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent, const char* new_name,
              unsigned flags) {
  if (is_past_name(req, parent, name) || is_past_name(req, new_parent, new_name)) return refuse(req);
  live().rename(req, parent, name, new_parent, new_name, flags);
}

void h_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  if (is_history_ino(ino) || is_past_name(req, new_parent, new_name)) return refuse(req);
  live().link(req, ino, new_parent, new_name);
}

void h_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_history_ino(ino)) return history(req).open(req, ino, fi);
  live().open(req, ino, fi);
}

void h_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (is_history_ino(ino)) return history(req).read(req, ino, size, off);
  live().read(req, ino, size, off, fi);
}

void h_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off, fuse_file_info* fi) {
  if (is_history_ino(ino)) return refuse(req);
  live().write(req, ino, buf, size, off, fi);
}

// A view's open files have no handle to free.
void h_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_history_ino(ino)) return static_cast<void>(fuse_reply_err(req, 0));
  live().release(req, ino, fi);
}

// Nothing of a view is ever dirty.
void h_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  if (is_history_ino(ino)) return static_cast<void>(fuse_reply_err(req, 0));
  live().fsync(req, ino, datasync, fi);
}

void h_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_history_ino(ino)) return history(req).opendir(req, ino, fi);
  live().opendir(req, ino, fi);
}

void h_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (is_history_ino(ino)) return history(req).readdir(req, size, off, fi, false);
  live().readdir(req, ino, size, off, fi);
}

void h_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  if (is_history_ino(ino)) return history(req).readdir(req, size, off, fi, true);
  live().readdirplus(req, ino, size, off, fi);
}

void h_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  if (is_history_ino(ino)) return HistoryDir::releasedir(req, fi);
  live().releasedir(req, ino, fi);
}

void h_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  if (is_history_ino(ino)) return static_cast<void>(fuse_reply_err(req, 0));
  live().fsyncdir(req, ino, datasync, fi);
}

void h_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
  if (is_history_ino(ino)) return refuse(req);
  live().setxattr(req, ino, name, value, size, flags);
}

void h_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (is_history_ino(ino)) return history(req).getxattr(req, ino, name, size);
  live().getxattr(req, ino, name, size);
}

void h_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  if (is_history_ino(ino)) return history(req).listxattr(req, ino, size);
  live().listxattr(req, ino, size);
}

void h_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (is_history_ino(ino)) return refuse(req);
  live().removexattr(req, ino, name);
}

void h_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  if (is_past_name(req, parent, name)) return refuse(req);
  live().create(req, parent, name, mode, fi);
}

void h_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
  if (is_history_ino(ino)) return refuse(req);
  live().fallocate(req, ino, mode, off, len, fi);
}

// The live table with every callback it sets replaced by its router; init
// and statfs (one answer for the whole mount) stay as they are.
fuse_lowlevel_ops make_ops() {
  fuse_lowlevel_ops ops = live();
  ops.lookup = h_lookup;
  ops.getattr = h_getattr;
  ops.setattr = h_setattr;
  ops.readlink = h_readlink;
  ops.mknod = h_mknod;
  ops.mkdir = h_mkdir;
  ops.unlink = h_unlink;
  ops.rmdir = h_rmdir;
  ops.symlink = h_symlink;
  ops.rename = h_rename;
  ops.link = h_link;
  ops.open = h_open;
  ops.read = h_read;
  ops.write = h_write;
  ops.release = h_release;
  ops.fsync = h_fsync;
  ops.opendir = h_opendir;
  ops.readdir = h_readdir;
  ops.readdirplus = h_readdirplus;
  ops.releasedir = h_releasedir;
  ops.fsyncdir = h_fsyncdir;
  ops.setxattr = h_setxattr;
  ops.getxattr = h_getxattr;
  ops.listxattr = h_listxattr;
  ops.removexattr = h_removexattr;
  ops.create = h_create;
  ops.fallocate = h_fallocate;
  return ops;
}

}  // namespace

const fuse_lowlevel_ops& roamfs_ops_with_history() {
  static const fuse_lowlevel_ops ops = make_ops();
  return ops;
}

}  // namespace roam
