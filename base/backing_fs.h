// Whether the filesystem a store lives on keeps its promises across a power
// loss (docs/crash-model.md, "Power loss").
//
// Since store format 3 the store relies on one thing only: that fsync (and
// fdatasync) put what was written on disk before they return. The write-ahead
// log is flushed before an fsync is answered, and LMDB's checkpoints are
// LMDB's own synced commits; what the kernel writes back between flushes, in
// whatever order, never decides whether the store opens (measured on ext4
// data=ordered and XFS: tests/integration/test_powerloss.cc). Every local
// disk filesystem Linux ships honours fsync; what remains is a RAM filesystem
// (the store is gone at restart) and filesystems whose flush roamdisk has not
// verified (network and FUSE filesystems, where an fsync's meaning is the
// server's).
#pragma once

#include <string>

namespace roam {

enum class PowerLoss {
  kSafe,        // power loss: the state after some op at least the last fsync'd
  kVolatile,    // tmpfs and the like: the store itself is gone after a restart
  kUnverified,  // fsync's meaning is up to something roamdisk has not tested
};

struct BackingFs {
  std::string fstype;  // "ext4", "zfs", ... ("unknown" when not found)
  std::string mode;    // ext4/ext3's data mode ("data=ordered"), else ""
  PowerLoss power_loss = PowerLoss::kUnverified;
};

// From a mount's filesystem type and super options (mountinfo's last field).
BackingFs classify_backing_fs(const std::string& fstype, const std::string& super_options);

// The filesystem holding `store_dir` (an existing directory), classified.
BackingFs backing_fs_of(const std::string& store_dir);

// "ext4 (data=ordered)", "tmpfs", ...
std::string describe(const BackingFs& fs);

// For roamfs's log and roamctl: a sentence saying what a power loss can do to
// this store and how to avoid it; empty when the store is safe.
std::string power_loss_warning(const std::string& store_dir, const BackingFs& fs);

}  // namespace roam
