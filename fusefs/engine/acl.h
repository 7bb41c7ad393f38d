// POSIX ACLs as Linux stores them in the system.posix_acl_access and
// system.posix_acl_default xattrs (the kernel's posix_acl_xattr format), and
// the rules that keep a file's mode and its access ACL in step, as the
// kernel's own filesystems apply them (fs/posix_acl.c):
//
// - setting an access ACL sets the mode's permission bits from it, and an
//   ACL that says no more than the mode is not stored (acl_equiv_mode);
// - chmod rewrites the ACL's owner, mask (or group) and other entries
//   (acl_chmod);
// - a new file or directory in a directory with a default ACL starts with
//   that ACL, masked by the mode it was created with, instead of the umask
//   (acl_create_masq).
//
// Pure functions: no store, no FUSE.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace roam {

inline constexpr std::string_view kAclAccessXattr = "system.posix_acl_access";
inline constexpr std::string_view kAclDefaultXattr = "system.posix_acl_default";

// ACL entry tags (include/uapi/linux/posix_acl.h), in the order entries sort.
enum AclTag : uint16_t {
  kAclUserObj = 0x01,
  kAclUser = 0x02,
  kAclGroupObj = 0x04,
  kAclGroup = 0x08,
  kAclMask = 0x10,
  kAclOther = 0x20,
};

struct AclEntry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx as 4|2|1
  uint32_t id = 0;    // uid or gid for kAclUser/kAclGroup
  bool operator==(const AclEntry&) const = default;
};

using Acl = std::vector<AclEntry>;

// Decodes an xattr value; EINVAL when it is not a version-2 ACL, when an
// entry has an unknown tag, or when the owner, group or other entry is missing.
Result<Acl> parse_acl(std::string_view value);
std::string encode_acl(const Acl& acl);

// The permission bits (0777) the ACL grants the owner, group class and
// others; sets `*extended` to whether the ACL says more than those bits (it
// has named users or groups, or a mask).
uint32_t acl_mode(const Acl& acl, bool* extended);

// chmod: the owner, other and mask (group, when there is no mask) entries
// take the permission bits of `mode`.
void acl_chmod(Acl& acl, uint32_t mode);

// A new inode under a default ACL: `acl` (a copy of the default ACL) is
// masked by the permission bits of `*mode`, and `*mode`'s permission bits by
// the ACL. Returns whether the resulting ACL says more than the mode (only
// then is it stored).
bool acl_create_masq(Acl& acl, uint32_t* mode);

}  // namespace roam
