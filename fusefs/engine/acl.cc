#include "fusefs/engine/acl.h"

#include <cstring>

namespace roam {

namespace {

// The xattr layout (include/linux/posix_acl_xattr.h): a 4-byte version, then
// 8-byte entries {u16 tag, u16 perm, u32 id}, all little-endian.
constexpr uint32_t kAclXattrVersion = 2;
constexpr size_t kHeaderBytes = 4;
constexpr size_t kEntryBytes = 8;
constexpr uint16_t kPermBits = 07;

uint32_t load_le(const char* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

void store_le(std::string& out, uint32_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

bool known_tag(uint16_t tag) {
  switch (tag) {
    case kAclUserObj:
    case kAclUser:
    case kAclGroupObj:
    case kAclGroup:
    case kAclMask:
    case kAclOther:
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<Acl> parse_acl(std::string_view value) {
  if (value.size() < kHeaderBytes || (value.size() - kHeaderBytes) % kEntryBytes != 0)
    return Status::invalid("ACL xattr of a bad size");
  if (load_le(value.data(), 4) != kAclXattrVersion) return Status::invalid("ACL xattr of an unknown version");
  Acl acl;
  unsigned required = 0;  // user, group and other entries seen
  for (size_t off = kHeaderBytes; off < value.size(); off += kEntryBytes) {
    AclEntry e;
    e.tag = static_cast<uint16_t>(load_le(value.data() + off, 2));
    e.perm = static_cast<uint16_t>(load_le(value.data() + off + 2, 2));
    e.id = load_le(value.data() + off + 4, 4);
    if (!known_tag(e.tag)) return Status::invalid("ACL entry with an unknown tag");
    if (e.tag == kAclUserObj || e.tag == kAclGroupObj || e.tag == kAclOther) required |= e.tag;
    acl.push_back(e);
  }
  if (required != (kAclUserObj | kAclGroupObj | kAclOther))
    return Status::invalid("ACL without its owner, group and other entries");
  return acl;
}

std::string encode_acl(const Acl& acl) {
  std::string out;
  out.reserve(kHeaderBytes + acl.size() * kEntryBytes);
  store_le(out, kAclXattrVersion, 4);
  for (const AclEntry& e : acl) {
    store_le(out, e.tag, 2);
    store_le(out, e.perm, 2);
    store_le(out, e.id, 4);
  }
  return out;
}

// As the kernel's posix_acl_equiv_mode.
uint32_t acl_mode(const Acl& acl, bool* extended) {
  uint32_t mode = 0;
  *extended = false;
  for (const AclEntry& e : acl) {
    const uint32_t perm = e.perm & kPermBits;
    switch (e.tag) {
      case kAclUserObj:
        mode |= perm << 6;
        break;
      case kAclGroupObj:
        mode |= perm << 3;
        break;
      case kAclOther:
        mode |= perm;
        break;
      case kAclMask:  // sorts after the group entry: the mask is the group class
        mode = (mode & ~070u) | (perm << 3);
        *extended = true;
        break;
      default:
        *extended = true;
        break;
    }
  }
  return mode;
}

// As the kernel's __posix_acl_chmod_masq.
void acl_chmod(Acl& acl, uint32_t mode) {
  AclEntry* group_obj = nullptr;
  AclEntry* mask = nullptr;
  for (AclEntry& e : acl) {
    if (e.tag == kAclUserObj) e.perm = static_cast<uint16_t>((mode >> 6) & kPermBits);
    if (e.tag == kAclOther) e.perm = static_cast<uint16_t>(mode & kPermBits);
    if (e.tag == kAclGroupObj) group_obj = &e;
    if (e.tag == kAclMask) mask = &e;
  }
  AclEntry* group_class = mask ? mask : group_obj;
  if (group_class) group_class->perm = static_cast<uint16_t>((mode >> 3) & kPermBits);
}

// As the kernel's posix_acl_create_masq.
bool acl_create_masq(Acl& acl, uint32_t* mode_p) {
  uint32_t mode = *mode_p;
  AclEntry* group_obj = nullptr;
  AclEntry* mask = nullptr;
  bool extended = false;
  for (AclEntry& e : acl) {
    switch (e.tag) {
      case kAclUserObj:
        e.perm &= static_cast<uint16_t>((mode >> 6) & kPermBits);
        mode &= (static_cast<uint32_t>(e.perm) << 6) | ~0700u;
        break;
      case kAclOther:
        e.perm &= static_cast<uint16_t>(mode & kPermBits);
        mode &= e.perm | ~07u;
        break;
      case kAclGroupObj:
        group_obj = &e;
        break;
      case kAclMask:
        mask = &e;
        extended = true;
        break;
      default:
        extended = true;
        break;
    }
  }
  if (AclEntry* group_class = mask ? mask : group_obj) {
    group_class->perm &= static_cast<uint16_t>((mode >> 3) & kPermBits);
    mode &= (static_cast<uint32_t>(group_class->perm) << 3) | ~070u;
  }
  *mode_p = (*mode_p & ~0777u) | (mode & 0777u);
  return extended;
}

}  // namespace roam
