#include "differential.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "mount_fixture.h"

namespace roamtest {

namespace {

// What the calls of one op returned, in order: "open=3 pwrite=100 close=0",
// with errno names for failures. File descriptor numbers are not compared.
std::string result_of(const std::vector<std::pair<std::string, long>>& steps) {
  std::string s;
  for (const auto& [what, v] : steps) s += what + "=" + std::to_string(v) + " ";
  return s;
}

long rc_or_errno(long rc) { return rc < 0 ? -errno : rc; }

// The entry at `p` (REQUIREs that it can be read).
Entry read_entry(const std::string& p) {
  struct stat st {};
  INFO("lstat " << p << ": " << std::strerror(errno));
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  Entry e;
  e.mode = st.st_mode;
  e.uid = st.st_uid;
  e.gid = st.st_gid;
  e.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
  e.nlink = st.st_nlink;
  e.mtime = st.st_mtim;
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
  return e;
}

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
    Entry e = read_entry(root + "/" + r);
    const bool dir_entry = S_ISDIR(e.mode);
    out[r] = std::move(e);
    if (dir_entry) walk(root, r, out);
  }
}

// Sets each entry's first_name from the inode numbers (first in name order).
void link_structure(Tree& t) {
  std::map<ino_t, std::string> first;
  for (auto& [path, e] : t) {
    auto [it, inserted] = first.emplace(e.ino, path);
    e.first_name = it->second;
  }
}

}  // namespace


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
    case Kind::kCopy: return "copy";
  }
  return "?";
}


std::string Op::describe() const {
  std::ostringstream s;
  s << kind_name(kind) << " " << a;
  if (!b.empty()) s << " " << b;
  s << " flags=0x" << std::hex << flags << std::dec << " mode=0" << std::oct << mode << std::dec << " uid=" << uid
    << " gid=" << gid << " offset=" << offset << " length=" << length;
  if (kind == Kind::kCopy) s << " offset_out=" << offset_out;
  if (!name.empty()) s << " name=" << name;
  return s.str();
}

std::string make_data(uint64_t seed, size_t len) {
  std::mt19937_64 rng(seed);
  return random_bytes(rng, len);
}


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
    case Kind::kCopy: {
      int in = ::open(a.c_str(), O_RDONLY | O_CLOEXEC);
      step("open", in < 0 ? in : 0);
      if (in < 0) break;
      int out = ::open(b.c_str(), O_WRONLY | O_CLOEXEC);
      step("open", out < 0 ? out : 0);
      if (out >= 0) {
        loff_t off_in = static_cast<loff_t>(op.offset), off_out = static_cast<loff_t>(op.offset_out);
        step("copy_file_range", ::copy_file_range(in, &off_in, out, &off_out, op.length, 0));
        step("close", ::close(out));
      }
      step("close", ::close(in));
      break;
    }
  }
  return result_of(steps);
}

Tree snapshot(const std::string& root, bool with_root) {
  Tree t;
  if (with_root) t[kRootKey] = read_entry(root);
  walk(root, "", t);
  link_structure(t);
  return t;
}

Tree subtree(const Tree& tree, const std::string& rel) {
  Tree out;
  if (rel.empty() || rel == kRootKey) {
    out = tree;
  } else {
    auto it = tree.find(rel);
    if (it != tree.end()) out[kRootKey] = it->second;
    const std::string prefix = rel + "/";
    for (it = tree.lower_bound(prefix); it != tree.end() && it->first.rfind(prefix, 0) == 0; ++it)
      out[it->first.substr(prefix.size())] = it->second;
  }
  recount_links(out);
  return out;
}

void recount_links(Tree& tree) {
  std::map<ino_t, nlink_t> names;
  for (const auto& [path, e] : tree) ++names[e.ino];
  for (auto& [path, e] : tree)
    if (!S_ISDIR(e.mode)) e.nlink = names[e.ino];
  link_structure(tree);
}

std::string mode_str(mode_t m) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0%o", static_cast<unsigned>(m));
  return buf;
}

namespace {

std::string time_str(const timespec& t) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%09ld", static_cast<long long>(t.tv_sec), t.tv_nsec);
  return buf;
}

}  // namespace

std::vector<std::string> diff_trees(const Tree& left, const Tree& right, const DiffOptions& o) {
  std::vector<std::string> out;
  auto add = [&](const std::string& s) {
    if (out.size() < o.limit) out.push_back(s);
  };
  // "PATH: WHAT L_VALUE on the left, R_VALUE on the right"
  auto differs = [&](const std::string& path, const std::string& what, const std::string& l, const std::string& r) {
    add(path + ": " + what + " " + l + " " + o.left + ", " + r + " " + o.right);
  };
  for (const auto& [path, r] : right) {
    auto it = left.find(path);
    if (it == left.end()) {
      add(path + ": missing " + o.left + " (mode " + mode_str(r.mode) + " " + o.right + ")");
      continue;
    }
    const Entry& l = it->second;
    if (l.mode != r.mode) differs(path, "mode", mode_str(l.mode), mode_str(r.mode));
    if (l.uid != r.uid || l.gid != r.gid)
      differs(path, "owner", std::to_string(l.uid) + ":" + std::to_string(l.gid),
              std::to_string(r.uid) + ":" + std::to_string(r.gid));
    if (l.size != r.size) differs(path, "size", std::to_string(l.size), std::to_string(r.size));
    if (l.nlink != r.nlink) differs(path, "nlink", std::to_string(l.nlink), std::to_string(r.nlink));
    if (l.content != r.content) {
      size_t i = 0;
      while (i < l.content.size() && i < r.content.size() && l.content[i] == r.content[i]) ++i;
      add(path + ": content differs from byte " + std::to_string(i) + " (lengths " + std::to_string(l.content.size()) +
          " " + o.left + " and " + std::to_string(r.content.size()) + " " + o.right + ")");
    }
    if (l.target != r.target) differs(path, "symlink target", "'" + l.target + "'", "'" + r.target + "'");
    if (l.xattrs != r.xattrs) {
      std::string l_names, r_names;
      for (const auto& [k, v] : l.xattrs) l_names += k + "(" + std::to_string(v.size()) + ") ";
      for (const auto& [k, v] : r.xattrs) r_names += k + "(" + std::to_string(v.size()) + ") ";
      differs(path, "xattrs", "[" + l_names + "]", "[" + r_names + "]");
    }
    if (l.first_name != r.first_name)
      differs(path, "hard-link structure differs: same inode as", l.first_name, r.first_name);
    if (o.mtime && (l.mtime.tv_sec != r.mtime.tv_sec || l.mtime.tv_nsec != r.mtime.tv_nsec))
      differs(path, "mtime", time_str(l.mtime), time_str(r.mtime));
  }
  for (const auto& [path, l] : left)
    if (!right.count(path)) add(path + ": exists only " + o.left + " (mode " + mode_str(l.mode) + ")");
  return out;
}

std::string diff_text(const Tree& left, const Tree& right, const DiffOptions& options) {
  std::string s;
  for (const auto& d : diff_trees(left, right, options)) s += "  " + d + "\n";
  return s;
}

// ---- generating operations ----

Op Generator::next(int index) {
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
  } else if (pick(3) == 0) {
    op.kind = Kind::kCopy;
    op.a = !files_.empty() && pick(4) ? any(files_) : path();
    op.b = !files_.empty() && pick(4) ? any(files_) : path();
    op.offset = pick(4) == 0 ? 0 : pick(1 << 20);
    op.offset_out = pick(4) == 0 ? op.offset : pick(1 << 20);
    op.length = pick(4) == 0 ? 4 << 20 : 1 + pick(400000);
  } else {
    op.kind = Kind::kRead;
    op.a = !files_.empty() && pick(4) ? any(files_) : path();
    op.offset = pick(1 << 20);
    op.length = 1 + pick(200000);
  }
  return op;
}

uint32_t Generator::pick_mode(bool dir) {
  const uint32_t common[] = {0644, 0600, 0755, 0700, 0444, 0777};
  uint32_t m = pick(3) ? common[pick(6)] : static_cast<uint32_t>(pick(07777 + 1));
  if (dir && pick(10) == 0) m |= S_ISGID;
  return m;
}

std::string Generator::random_path(int max_depth) {
  static const char* names[] = {"a", "b", "c", "d", "e"};
  std::string p = names[pick(5)];
  for (int d = 1 + static_cast<int>(pick(static_cast<uint64_t>(max_depth))); d > 1; --d) p += std::string("/") + names[pick(5)];
  return p;
}

std::string Generator::path() { return !all_.empty() && pick(10) < 7 ? any(all_) : random_path(3); }

std::string Generator::new_path() {
  static const char* names[] = {"a", "b", "c", "d", "e", "f1", "f2", "g"};
  if (pick(10) < 8) {
    std::string parent = dirs_.empty() || pick(3) == 0 ? "" : any(dirs_);
    std::string n = names[pick(8)];
    return parent.empty() ? n : parent + "/" + n;
  }
  return random_path(3);
}

void Generator::refresh() {
  files_.clear(), dirs_.clear(), all_.clear();
  Tree t = snapshot(ref_root_);
  for (const auto& [p, e] : t) {
    all_.push_back(p);
    if (S_ISREG(e.mode)) files_.push_back(p);
    if (S_ISDIR(e.mode)) dirs_.push_back(p);
  }
}

// ---- the differential loop ----

std::pair<Op, std::string> Lockstep::step() {
  const uint64_t i = done_++;
  Op op = gen_.next(static_cast<int>(i));
  const std::string on_fs = apply_op(fs_, op);
  const std::string on_ref = apply_op(ref_, op);
  recent_.push_back("#" + std::to_string(i) + " " + op.describe() + " -> " + on_ref);
  if (recent_.size() > 25) recent_.pop_front();
  if (on_fs != on_ref)
    FAIL("op #" << i << " (seed " << seed_ << ") " << op.describe() << "\n  roamfs:    " << on_fs
                << "\n  reference: " << on_ref << "\n(negative numbers are -errno)\nrecent operations:\n"
                << recent());
  return {std::move(op), on_ref};
}

Tree Lockstep::compare(const std::string& when, bool with_root) {
  Tree fs = snapshot(fs_, with_root);
  const std::string diffs = diff_text(fs, snapshot(ref_, with_root));
  if (!diffs.empty())
    FAIL("trees differ " << when << " (seed " << seed_ << "):\n" << diffs << "recent operations:\n" << recent());
  return fs;
}

std::string Lockstep::recent() const {
  std::string s;
  for (const auto& h : recent_) s += "  " + h + "\n";
  return s;
}

}  // namespace roamtest
