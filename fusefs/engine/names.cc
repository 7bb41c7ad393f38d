#include "fusefs/engine/names.h"

namespace roam {

Status add_name(Mutation& m, Inode& inode, uint64_t parent, std::string_view name) {
  if (inode.parent == 0 || inode.nlink == 0) {
    inode.parent = parent;
    inode.name = std::string(name);
  } else {
    ROAM_TRY(m.write_txn().put_link(inode.ino, parent, name));
  }
  ++inode.nlink;
  return Status::ok();
}

Status drop_name(Mutation& m, Inode& inode, uint64_t parent, std::string_view name) {
  if (inode.nlink > 0) --inode.nlink;
  if (inode.parent != parent || inode.name != name) return m.write_txn().del_link(inode.ino, parent, name);
  ROAM_ASSIGN(auto other, m.txn().any_link(inode.ino));
  if (other) {
    ROAM_TRY(m.write_txn().del_link(inode.ino, other->first, other->second));
    inode.parent = other->first;
    inode.name = other->second;
  }
  return Status::ok();
}

Status move_name(Mutation& m, Inode& inode, uint64_t parent, std::string_view name, uint64_t new_parent,
                 std::string_view new_name) {
  if (inode.parent == parent && inode.name == name) {
    inode.parent = new_parent;
    inode.name = std::string(new_name);
    return Status::ok();
  }
  ROAM_TRY(m.write_txn().del_link(inode.ino, parent, name));
  return m.write_txn().put_link(inode.ino, new_parent, new_name);
}

Status drop_extra_names(Mutation& m, uint64_t ino) {
  for (;;) {
    ROAM_ASSIGN(auto other, m.txn().any_link(ino));
    if (!other) return Status::ok();
    ROAM_TRY(m.write_txn().del_link(ino, other->first, other->second));
  }
}

}  // namespace roam
