// The machinery of the differential tests (test_differential, test_restore):
// seeded random file-system operations applied with ordinary system calls to
// any directory, and exact snapshots of whole trees with a readable diff.
//
// A Tree is every entry below a root, by relative path ("a/b"): type and mode,
// owner, size, link count, content, symlink target, user.* xattrs, mtime, and
// the hard-link structure (the first name, in name order, of each entry's
// inode). Comparing two trees says what differs, one line per difference.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace roamtest {

// ---- operations ----

enum class Kind {
  kCreate, kWrite, kTruncate, kRename, kLink, kUnlink, kMkdir, kRmdir, kChmod, kChown,
  kSymlink, kSetxattr, kRemovexattr, kFallocate, kRead, kCopy,
};

const char* kind_name(Kind k);

// One operation, fully decided before it is applied to either side.
struct Op {
  Kind kind = Kind::kCreate;
  std::string a, b;       // paths relative to the root (b: rename/link target, symlink target, copy destination)
  int flags = 0;          // open flags / rename flags / xattr flags / fallocate mode / chown follow
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t offset = 0, length = 0;
  uint64_t offset_out = 0;  // copy: the destination's offset
  uint64_t data_seed = 0;
  std::string name;       // xattr name

  std::string describe() const;
};

// `len` pseudo-random bytes from `seed`.
std::string make_data(uint64_t seed, size_t len);

// Applies `op` below `root` and returns what its calls returned, in order:
// "open=0 pwrite=100 close=0 ", failures as -errno. File descriptor numbers
// are not part of it, so the results of two roots compare.
std::string apply_op(const std::string& root, const Op& op);

// ---- tree snapshots ----

struct Entry {
  mode_t mode = 0;  // type and permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;   // not for directories
  nlink_t nlink = 0;
  timespec mtime{};
  std::string content;  // regular files
  std::string target;   // symlinks
  std::map<std::string, std::string> xattrs;  // user.*
  std::string first_name;  // the first path (in name order) of this inode: hard-link structure
  ino_t ino = 0;
};

using Tree = std::map<std::string, Entry>;

// The root's own entry in a snapshot taken `with_root`.
inline constexpr const char* kRootKey = ".";

// Every entry below `root` (REQUIREs that each can be read). With `with_root`
// the root directory itself is entry ".".
Tree snapshot(const std::string& root, bool with_root = false);

// The part of `tree` (taken with_root) at relative path `rel` ("" or "." for
// all of it), re-rooted: `rel` becomes ".", "rel/x" becomes "x". Link counts of
// non-directories and the hard-link structure are recomputed from the names
// inside the part, which is what a restore of that part alone gives back.
Tree subtree(const Tree& tree, const std::string& rel);
// Makes the link counts of non-directories and the hard-link structure those
// of the names in `tree` alone.
void recount_links(Tree& tree);

// How two trees are compared and named in the differences.
struct DiffOptions {
  std::string left = "on roamfs", right = "in reference";
  bool mtime = false;  // compare mtimes too (not between two file systems)
  size_t limit = 20;   // at most this many lines
};

// The differences between `left` and `right`, one line each.
std::vector<std::string> diff_trees(const Tree& left, const Tree& right, const DiffOptions& options = {});
// The same joined as indented lines, "" when the trees are the same.
std::string diff_text(const Tree& left, const Tree& right, const DiffOptions& options = {});

std::string mode_str(mode_t m);

// ---- generating operations ----

// Seeded random operations on the tree below `ref_root` (which it re-reads
// every 20 ops to pick existing paths): mostly valid, some failing on purpose.
class Generator {
 public:
  Generator(uint64_t seed, std::string ref_root) : rng_(seed), ref_root_(std::move(ref_root)) {}

  Op next(int index);

 private:
  uint64_t pick(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  const std::string& any(const std::vector<std::string>& v) { return v[pick(v.size())]; }
  uint32_t pick_mode(bool dir);
  std::string random_path(int max_depth);
  std::string path();      // an existing entry most of the time; sometimes anything
  std::string new_path();  // a name in an existing directory most of the time
  void refresh();          // re-reads the reference tree (deterministic: sorted walk)

  std::mt19937_64 rng_;
  std::string ref_root_;
  std::vector<std::string> files_, dirs_, all_;
};

// The differential loop: the generator's ops applied alike to roamfs (below
// `fs_root`) and to a plain reference directory; the first op whose results
// differ FAILs, showing the seed and the last ops.
class Lockstep {
 public:
  Lockstep(uint64_t seed, std::string fs_root, std::string ref_root)
      : seed_(seed), fs_(std::move(fs_root)), ref_(std::move(ref_root)), gen_(seed, ref_) {}

  // Applies op #ops_done() to both sides; returns it and its result.
  std::pair<Op, std::string> step();
  // FAILs when the two trees differ (all but mtimes), saying `when`; returns
  // roamfs's tree.
  Tree compare(const std::string& when, bool with_root = false);
  // The last 25 ops with their results, one an indented line.
  std::string recent() const;
  uint64_t ops_done() const { return done_; }

 private:
  uint64_t seed_;
  std::string fs_, ref_;
  Generator gen_;
  std::deque<std::string> recent_;
  uint64_t done_ = 0;
};

// Sets the umask for its lifetime (0: the tests' modes are taken as given).
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t m) : old_(::umask(m)) {}
  ~ScopedUmask() { ::umask(old_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t old_;
};

}  // namespace roamtest
