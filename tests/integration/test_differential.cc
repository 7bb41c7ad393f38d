// Differential test: the same seeded random operations, done with ordinary
// system calls on a roamfs mount and on a plain directory under /tmp, must give
// the same results (each call's return value and errno), and the two trees must
// stay identical: names, types, contents, mode, owner, size, link counts,
// user.* xattrs, symlink targets, hard-link structure. Compared every ~300 ops,
// at the end, and once more after a remount (so that what roamfs stored, not
// only what the kernel cached, is compared), followed by `roamctl scrub`.
//
// ROAM_DIFF_OPS scales the run (default 3000); ROAM_SEED picks the seed
// (default fixed). The seed is printed, and shown with every failure.
#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <sstream>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

enum class Kind {
  kCreate, kWrite, kTruncate, kRename, kLink, kUnlink, kMkdir, kRmdir, kChmod, kChown,
  kSymlink, kSetxattr, kRemovexattr, kFallocate, kRead,
};

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kCreate: return "create";
    case Kind::kWrite: return "write";
    case Kind::kTruncate: return "truncate";
    case Kind::kRename: return "rename";
    case Kind::kLink: return "link";
    case Kind::kUnlink: return "unlink";
    case Kind::kMkdir: return "mkdir";
    case Kind::kRmdir: return "rmdir";
    case Kind::kChmod: return "chmod";
    case Kind::kChown: return "chown";
    case Kind::kSymlink: return "symlink";
    case Kind::kSetxattr: return "setxattr";
    case Kind::kRemovexattr: return "removexattr";
    case Kind::kFallocate: return "fallocate";
    case Kind::kRead: return "read";
  }
  return "?";
}

// One operation, fully decided before it is applied to either side.
struct Op {
  Kind kind = Kind::kCreate;
  std::string a, b;       // paths relative to the root (b: rename/link target, symlink target)
  int flags = 0;          // open flags / rename flags / xattr flags / fallocate mode / chown follow
  uint32_t mode = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t offset = 0, length = 0;
  uint64_t data_seed = 0;
  std::string name;       // xattr name

  std::string describe() const {
    std::ostringstream s;
    s << kind_name(kind) << " " << a;
    if (!b.empty()) s << " " << b;
    s << " flags=0x" << std::hex << flags << std::dec << " mode=0" << std::oct << mode << std::dec << " uid=" << uid
      << " gid=" << gid << " offset=" << offset << " length=" << length;
    if (!name.empty()) s << " name=" << name;
    return s.str();
  }
};

std::string make_data(uint64_t seed, size_t len) {
  std::mt19937_64 rng(seed);
  std::string s(len, '\0');
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  for (; i < len; ++i) s[i] = static_cast<char>(rng());
  return s;
}

// What the calls of one op returned, in order: "open=3 pwrite=100 close=0",
// with errno names for failures. File descriptor numbers are not compared.
std::string result_of(const std::vector<std::pair<std::string, long>>& steps) {
  std::string s;
  for (const auto& [what, v] : steps) s += what + "=" + std::to_string(v) + " ";
  return s;
}

long rc_or_errno(long rc) { return rc < 0 ? -errno : rc; }

std::string apply_op(const std::string& root, const Op& op) {
  const std::string a = root + "/" + op.a;
  const std::string b = root + "/" + op.b;
  std::vector<std::pair<std::string, long>> steps;
  auto step = [&](const char* what, long rc) { steps.emplace_back(what, rc_or_errno(rc)); };
  switch (op.kind) {
    case Kind::kCreate: {
      int fd = ::open(a.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | op.flags, op.mode);
      step("open", fd < 0 ? fd : 0);
      if (fd >= 0) step("close", ::close(fd));
      break;
    }
    case Kind::kWrite: {
      int fd = ::open(a.c_str(), O_WRONLY | O_CLOEXEC | op.flags);
      step("open", fd < 0 ? fd : 0);
      if (fd < 0) break;
      const std::string data = make_data(op.data_seed, op.length);
      if (op.flags & O_APPEND)
        step("write", ::write(fd, data.data(), data.size()));
      else
        step("pwrite", ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(op.offset)));
      step("close", ::close(fd));
      break;
    }
    case Kind::kTruncate:
      step("truncate", ::truncate(a.c_str(), static_cast<off_t>(op.length)));
      break;
    case Kind::kRename:
      step("renameat2", ::syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), op.flags));
      break;
    case Kind::kLink:
      step("link", ::link(a.c_str(), b.c_str()));
      break;
    case Kind::kUnlink:
      step("unlink", ::unlink(a.c_str()));
      break;
    case Kind::kMkdir:
      step("mkdir", ::mkdir(a.c_str(), op.mode));
      break;
    case Kind::kRmdir:
      step("rmdir", ::rmdir(a.c_str()));
      break;
    case Kind::kChmod:
      step("chmod", ::chmod(a.c_str(), op.mode));
      break;
    case Kind::kChown:
      if (op.flags)
        step("chown", ::chown(a.c_str(), op.uid, op.gid));
      else
        step("lchown", ::lchown(a.c_str(), op.uid, op.gid));
      break;
    case Kind::kSymlink:
      step("symlink", ::symlink(op.b.c_str(), a.c_str()));
      break;
    case Kind::kSetxattr: {
      const std::string v = make_data(op.data_seed, op.length);
      step("lsetxattr", ::lsetxattr(a.c_str(), op.name.c_str(), v.data(), v.size(), op.flags));
      break;
    }
    case Kind::kRemovexattr:
      step("lremovexattr", ::lremovexattr(a.c_str(), op.name.c_str()));
      break;
    case Kind::kFallocate: {
      int fd = ::open(a.c_str(), O_WRONLY | O_CLOEXEC);
      step("open", fd < 0 ? fd : 0);
      if (fd < 0) break;
      step("fallocate", ::fallocate(fd, op.flags, static_cast<off_t>(op.offset), static_cast<off_t>(op.length)));
      step("close", ::close(fd));
      break;
    }
    case Kind::kRead: {
      int fd = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
      step("open", fd < 0 ? fd : 0);
      if (fd < 0) break;
      std::string buf(op.length, '\0');
      ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(op.offset));
      step("pread", n);
      if (n > 0) steps.emplace_back("bytes-fnv", static_cast<long>(fnv1a(buf.data(), static_cast<size_t>(n)) >> 1));
      step("close", ::close(fd));
      break;
    }
  }
  return result_of(steps);
}

// ---- tree snapshots ----

struct Entry {
  mode_t mode = 0;  // type and permission bits
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;   // not for directories
  nlink_t nlink = 0;
  std::string content;  // regular files
  std::string target;   // symlinks
  std::map<std::string, std::string> xattrs;  // user.*
  std::string first_name;  // the first path (in name order) of this inode: hard-link structure
  ino_t ino = 0;
};

using Tree = std::map<std::string, Entry>;

void walk(const std::string& root, const std::string& rel, Tree& out) {
  const std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  INFO("opendir " << dir << ": " << std::strerror(errno));
  REQUIRE(d != nullptr);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) {
    const std::string r = rel.empty() ? n : rel + "/" + n;
    const std::string p = root + "/" + r;
    struct stat st {};
    INFO("lstat " << p << ": " << std::strerror(errno));
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    Entry e;
    e.mode = st.st_mode;
    e.uid = st.st_uid;
    e.gid = st.st_gid;
    e.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
    e.nlink = st.st_nlink;
    e.ino = st.st_ino;
    if (S_ISREG(st.st_mode)) {
      try {
        e.content = read_file(p);
      } catch (const std::exception& ex) {
        FAIL("reading " << p << ": " << ex.what());
      }
    } else if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX + 1];
      ssize_t len = ::readlink(p.c_str(), buf, sizeof buf);
      REQUIRE(len >= 0);
      e.target.assign(buf, static_cast<size_t>(len));
    }
    ssize_t len = ::llistxattr(p.c_str(), nullptr, 0);
    REQUIRE(len >= 0);
    std::string list(static_cast<size_t>(len), '\0');
    len = ::llistxattr(p.c_str(), list.data(), list.size());
    REQUIRE(len >= 0);
    for (size_t i = 0; i < static_cast<size_t>(len);) {
      std::string name(list.c_str() + i);
      i += name.size() + 1;
      if (name.rfind("user.", 0) != 0) continue;
      ssize_t vlen = ::lgetxattr(p.c_str(), name.c_str(), nullptr, 0);
      REQUIRE(vlen >= 0);
      std::string v(static_cast<size_t>(vlen), '\0');
      vlen = ::lgetxattr(p.c_str(), name.c_str(), v.data(), v.size());
      REQUIRE(vlen >= 0);
      v.resize(static_cast<size_t>(vlen));
      e.xattrs[name] = v;
    }
    out[r] = std::move(e);
    if (S_ISDIR(st.st_mode)) walk(root, r, out);
  }
}

Tree snapshot(const std::string& root) {
  Tree t;
  walk(root, "", t);
  std::map<ino_t, std::string> first;
  for (auto& [path, e] : t) {
    auto [it, inserted] = first.emplace(e.ino, path);
    e.first_name = it->second;
  }
  return t;
}

std::string mode_str(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", static_cast<unsigned>(m));
  return buf;
}

// Differences between the two trees, one line each (at most `limit`).
std::vector<std::string> diff_trees(const Tree& fs, const Tree& ref, size_t limit = 20) {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (out.size() < limit) out.push_back(s);
  };
  for (const auto& [path, r] : ref) {
    auto it = fs.find(path);
    if (it == fs.end()) {
      add(path + ": missing on roamfs (reference mode " + mode_str(r.mode) + ")");
      continue;
    }
    const Entry& f = it->second;
    if (f.mode != r.mode) add(path + ": mode " + mode_str(f.mode) + " on roamfs, " + mode_str(r.mode) + " in reference");
    if (f.uid != r.uid || f.gid != r.gid)
      add(path + ": owner " + std::to_string(f.uid) + ":" + std::to_string(f.gid) + " on roamfs, " +
          std::to_string(r.uid) + ":" + std::to_string(r.gid) + " in reference");
    if (f.size != r.size)
      add(path + ": size " + std::to_string(f.size) + " on roamfs, " + std::to_string(r.size) + " in reference");
    if (f.nlink != r.nlink)
      add(path + ": nlink " + std::to_string(f.nlink) + " on roamfs, " + std::to_string(r.nlink) + " in reference");
    if (f.content != r.content) {
      size_t i = 0;
      while (i < f.content.size() && i < r.content.size() && f.content[i] == r.content[i]) ++i;
      add(path + ": content differs from byte " + std::to_string(i) + " (lengths " + std::to_string(f.content.size()) +
          " and " + std::to_string(r.content.size()) + ")");
    }
    if (f.target != r.target) add(path + ": symlink target '" + f.target + "' on roamfs, '" + r.target + "' in reference");
    if (f.xattrs != r.xattrs) {
      std::string fs_names, ref_names;
      for (const auto& [k, v] : f.xattrs) fs_names += k + "(" + std::to_string(v.size()) + ") ";
      for (const auto& [k, v] : r.xattrs) ref_names += k + "(" + std::to_string(v.size()) + ") ";
      add(path + ": xattrs differ: roamfs [" + fs_names + "] reference [" + ref_names + "]");
    }
    if (f.first_name != r.first_name)
      add(path + ": hard-link structure differs: same inode as " + f.first_name + " on roamfs, as " + r.first_name +
          " in reference");
  }
  for (const auto& [path, f] : fs)
    if (!ref.count(path)) add(path + ": exists only on roamfs (mode " + mode_str(f.mode) + ")");
  return out;
}

// ---- generating operations ----

class Generator {
 public:
  Generator(uint64_t seed, std::string ref_root) : rng_(seed), ref_root_(std::move(ref_root)) {}

  Op next(int index) {
    if (index % 20 == 0) refresh();
    Op op;
    op.data_seed = rng_();
    const int r = pick(100);
    if (r < 11) {
      op.kind = Kind::kCreate;
      op.a = new_path();
      op.mode = pick_mode(false);
      op.flags = (pick(3) == 0 ? O_EXCL : 0) | (pick(6) == 0 ? O_TRUNC : 0);
    } else if (r < 31) {
      op.kind = Kind::kWrite;
      op.a = pick(10) < 8 && !files_.empty() ? any(files_) : path();
      const int f = pick(10);
      op.flags = f == 0 ? O_APPEND : f == 1 ? O_TRUNC : 0;
      op.length = pick(12) == 0 ? 1 + pick(400000) : pick(20) == 0 ? 0 : 1 + pick(65536);
      op.offset = pick(20) == 0 ? pick(4 << 20) : pick(1 << 20);
    } else if (r < 37) {
      op.kind = Kind::kTruncate;
      op.a = pick(10) < 8 && !files_.empty() ? any(files_) : path();
      op.length = pick(4) == 0 ? 0 : pick(2 << 20);
    } else if (r < 45) {
      op.kind = Kind::kRename;
      op.a = path();
      op.b = pick(2) ? path() : new_path();
      const int f = pick(6);
      op.flags = f == 0 ? RENAME_NOREPLACE : f == 1 ? RENAME_EXCHANGE : 0;
    } else if (r < 50) {
      op.kind = Kind::kLink;
      op.a = !files_.empty() && pick(4) ? any(files_) : path();
      op.b = new_path();
    } else if (r < 56) {
      op.kind = Kind::kUnlink;
      op.a = path();
    } else if (r < 64) {
      op.kind = Kind::kMkdir;
      op.a = new_path();
      op.mode = pick_mode(true);
    } else if (r < 69) {
      op.kind = Kind::kRmdir;
      op.a = !dirs_.empty() && pick(4) ? any(dirs_) : path();
    } else if (r < 74) {
      op.kind = Kind::kChmod;
      op.a = path();
      op.mode = pick_mode(pick(2));
    } else if (r < 78) {
      op.kind = Kind::kChown;
      op.a = path();
      const uint32_t uids[] = {0, 1000, 1001, static_cast<uint32_t>(-1)};
      const uint32_t gids[] = {0, 100, 1001, static_cast<uint32_t>(-1)};
      op.uid = uids[pick(4)];
      op.gid = gids[pick(4)];
      op.flags = pick(2);  // 1: chown (follows symlinks), 0: lchown
    } else if (r < 83) {
      op.kind = Kind::kSymlink;
      op.a = new_path();
      op.b = random_path(3);  // relative, no "..": resolves inside each tree alike
    } else if (r < 89) {
      op.kind = Kind::kSetxattr;
      op.a = path();
      op.name = "user." + std::string(1, static_cast<char>('p' + pick(5)));
      op.length = pick(10) == 0 ? 0 : pick(200);
      const int f = pick(5);
      op.flags = f == 0 ? XATTR_CREATE : f == 1 ? XATTR_REPLACE : 0;
    } else if (r < 91) {
      op.kind = Kind::kRemovexattr;
      op.a = path();
      op.name = "user." + std::string(1, static_cast<char>('p' + pick(5)));
    } else if (r < 96) {
      op.kind = Kind::kFallocate;
      op.a = !files_.empty() && pick(4) ? any(files_) : path();
      const int modes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE,
                           FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
      op.flags = modes[pick(5)];
      op.offset = pick(1 << 20);
      op.length = 1 + pick(300000);
    } else {
      op.kind = Kind::kRead;
      op.a = !files_.empty() && pick(4) ? any(files_) : path();
      op.offset = pick(1 << 20);
      op.length = 1 + pick(200000);
    }
    return op;
  }

 private:
  uint64_t pick(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  const std::string& any(const std::vector<std::string>& v) { return v[pick(v.size())]; }

  uint32_t pick_mode(bool dir) {
    const uint32_t common[] = {0644, 0600, 0755, 0700, 0444, 0777};
    uint32_t m = pick(3) ? common[pick(6)] : static_cast<uint32_t>(pick(07777 + 1));
    if (dir && pick(10) == 0) m |= S_ISGID;
    return m;
  }

  std::string random_path(int max_depth) {
    static const char* names[] = {"a", "b", "c", "d", "e"};
    std::string p = names[pick(5)];
    for (int d = 1 + static_cast<int>(pick(static_cast<uint64_t>(max_depth))); d > 1; --d) p += std::string("/") + names[pick(5)];
    return p;
  }

  // An existing entry most of the time; sometimes anything.
  std::string path() { return !all_.empty() && pick(10) < 7 ? any(all_) : random_path(3); }
  // A name in an existing directory most of the time.
  std::string new_path() {
    static const char* names[] = {"a", "b", "c", "d", "e", "f1", "f2", "g"};
    if (pick(10) < 8) {
      std::string parent = dirs_.empty() || pick(3) == 0 ? "" : any(dirs_);
      std::string n = names[pick(8)];
      return parent.empty() ? n : parent + "/" + n;
    }
    return random_path(3);
  }

  // Re-reads the reference tree (deterministic: sorted walk).
  void refresh() {
    files_.clear(), dirs_.clear(), all_.clear();
    Tree t = snapshot(ref_root_);
    for (const auto& [p, e] : t) {
      all_.push_back(p);
      if (S_ISREG(e.mode)) files_.push_back(p);
      if (S_ISDIR(e.mode)) dirs_.push_back(p);
    }
  }

  std::mt19937_64 rng_;
  std::string ref_root_;
  std::vector<std::string> files_, dirs_, all_;
};

}  // namespace

TEST_CASE("random operations give the same results on roamfs and on a plain directory", "[differential]") {
  const uint64_t seed = env_u64("ROAM_SEED", 20261127);
  const uint64_t ops = env_u64("ROAM_DIFF_OPS", 3000);
  std::printf("differential: ROAM_SEED=%" PRIu64 " ROAM_DIFF_OPS=%" PRIu64 "\n", seed, ops);
  std::fflush(stdout);
  INFO("reproduce with ROAM_SEED=" << seed << " ROAM_DIFF_OPS=" << ops);

  const mode_t old_umask = ::umask(0);
  struct RestoreUmask {
    mode_t m;
    ~RestoreUmask() { ::umask(m); }
  } restore_umask{old_umask};

  MountFixture fx;
  const std::string ref = make_temp_dir("diffref");
  struct RemoveRef {
    std::string p;
    ~RemoveRef() { remove_tree(p); }
  } remove_ref{ref};
  ::chmod(ref.c_str(), 0755);  // the same root mode as the mount's

  Generator gen(seed, ref);
  std::deque<std::string> recent;  // the last ops, for failure messages
  auto history = [&] {
    std::string s;
    for (const auto& h : recent) s += "  " + h + "\n";
    return s;
  };
  auto compare = [&](const std::string& when) {
    Tree a = snapshot(fx.mnt());
    Tree b = snapshot(ref);
    auto diffs = diff_trees(a, b);
    if (!diffs.empty()) {
      std::string s;
      for (const auto& d : diffs) s += "  " + d + "\n";
      FAIL("trees differ " << when << " (seed " << seed << "):\n" << s << "recent operations:\n" << history());
    }
    return a.size();
  };

  std::map<std::string, int> failures_by_kind, ops_by_kind;
  for (uint64_t i = 0; i < ops; ++i) {
    Op op = gen.next(static_cast<int>(i));
    const std::string on_fs = apply_op(fx.mnt(), op);
    const std::string on_ref = apply_op(ref, op);
    recent.push_back("#" + std::to_string(i) + " " + op.describe() + " -> " + on_ref);
    if (recent.size() > 25) recent.pop_front();
    ++ops_by_kind[kind_name(op.kind)];
    if (on_ref.find("=-") != std::string::npos) ++failures_by_kind[kind_name(op.kind)];
    if (on_fs != on_ref) {
      FAIL("op #" << i << " (seed " << seed << ") " << op.describe() << "\n  roamfs:    " << on_fs
                  << "\n  reference: " << on_ref << "\n(negative numbers are -errno)\nrecent operations:\n"
                  << history());
    }
    if ((i + 1) % 300 == 0) compare("after op #" + std::to_string(i));
  }
  const size_t entries = compare("at the end");
  std::printf("differential: %zu entries in the final tree\n", entries);
  for (const auto& [k, n] : ops_by_kind)
    std::printf("  %-12s %5d ops, %5d failed on both sides\n", k.c_str(), n, failures_by_kind[k]);

  // What roamfs stored, not only what the kernel cached.
  fx.remount();
  compare("after a remount");
  fx.unmount();
  ProcResult scrub = roamctl({"scrub", fx.store()});
  INFO(scrub.describe());
  CHECK(scrub.exit_code() == 0);
}
