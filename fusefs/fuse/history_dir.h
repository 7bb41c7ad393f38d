// The `.history` directory of a live mount (docs/restore.md, "Time travel"):
// reachable by lookup at the root, absent from the root's listing; each TIME
// is a directory in it showing the disk as it was then, read-only, served by
// the engine's past views (Fs with an at_seq, as `roamfs --at` serves one)
// on the live store. Inode numbers: fusefs/history/time_travel.h.
//
// What the kernel may cache: `.history` itself, a fixed moment in it (an ISO
// time, @EPOCH) and everything inside a view for a day, since a view is one
// op log seq and never changes; a relative name (-2h, now) for a second,
// since its moment moves on. Each
// answer from a view is checked afterwards against retention: once GC has
// dropped a record the view needs, its files fail with ESTALE rather than
// show a state that never was.
//
// Permissions are the past ones: attributes (and ACL xattrs) come from the
// view and the kernel checks them (default_permissions). Anything that would
// change a view or `.history` fails with EROFS (roamfs_ops_with_history).
//
// Threading: handlers run on libfuse's worker threads concurrently; the
// view table is the only shared state and has its own lock.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "fusefs/fuse/ops.h"
#include "fusefs/history/time_travel.h"

namespace roam {

class HistoryDir {
 public:
  // `live` must outlive this; `attr_timeout` is how long the kernel may keep
  // what it learned inside a view.
  HistoryDir(Fs& live, double attr_timeout) : live_(live), view_timeout_(attr_timeout) {}

  // Each handler replies exactly once. `ino`/`parent` are .history inodes
  // (time_travel::is_history_ino), except for lookup_dir.
  void lookup_dir(fuse_req_t req);  // ".history" in the root
  void lookup(fuse_req_t req, uint64_t parent, const char* name);
  void getattr(fuse_req_t req, uint64_t ino);
  void readlink(fuse_req_t req, uint64_t ino);
  void open(fuse_req_t req, uint64_t ino, fuse_file_info* fi);
  void read(fuse_req_t req, uint64_t ino, size_t size, off_t off);
  void opendir(fuse_req_t req, uint64_t ino, fuse_file_info* fi);
  void readdir(fuse_req_t req, size_t size, off_t off, fuse_file_info* fi, bool plus);
  static void releasedir(fuse_req_t req, fuse_file_info* fi);
  void getxattr(fuse_req_t req, uint64_t ino, const char* name, size_t size);
  void listxattr(fuse_req_t req, uint64_t ino, size_t size);

 private:
  struct View {
    uint32_t index = 0;
    uint64_t seq = 0;
    uint64_t ino = 0;  // the inode at that moment
  };
  struct Listing;

  Result<View> view_of(uint64_t ino) const;
  // Runs `read` on an Fs showing the disk at `seq`, then checks the log
  // still holds that moment (ESTALE otherwise).
  template <class T, class Read>
  Result<T> in_view(uint64_t seq, Read&& read);
  // The inode of a view as the kernel sees it: renumbered, its view's root's
  // parent being .history.
  Result<Inode> renumbered(uint32_t index, Inode i) const;
  Result<Inode> past_inode(const View& v);
  Result<Inode> dir_inode();
  // A past file's size and extents, kept per view and inode so that reading
  // it does not decode the records after the moment again for every read
  // request (that was ~30% more CPU than reading the live file). Valid while
  // the log holds no record of the inode newer than `newest_seq`: every
  // change to a file's data or size is such a record.
  struct PastFile {
    uint64_t size = 0;
    std::vector<Extent> extents;
    uint64_t newest_seq = 0;
  };
  Result<std::shared_ptr<const PastFile>> past_file(const StoreTxn& txn, const View& v);
  Result<size_t> read_past(const View& v, uint64_t offset, size_t size, char* buf);
  Status still_held(uint64_t seq);
  Result<std::unique_ptr<Listing>> list_moments();
  Result<std::unique_ptr<Listing>> list_view_dir(const View& v);
  Result<size_t> fill(fuse_req_t req, Listing& listing, std::vector<char>& buf, off_t off, bool plus);
  void reply_entry(fuse_req_t req, const Inode& i, double entry_timeout);

  Fs& live_;
  const double view_timeout_;
  time_travel::ViewTable views_;
  std::mutex files_mu_;  // guards files_
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<const PastFile>> files_;  // (seq, ino) ->
};

// roamfs_ops() with `.history`: requests on its inodes go to
// FuseContext::history (which must be set before the session runs), those
// that would change it fail with EROFS, the rest go to roamfs_ops().
const fuse_lowlevel_ops& roamfs_ops_with_history();

}  // namespace roam
