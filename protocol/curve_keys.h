// CURVE key pairs: generation, and the key file format shared by roamctl
// keygen, roam-broker and roam-agent.
//
// A key file holds two lines, "public = HEX" and "secret = HEX" (64 hex
// digits each, a Curve25519 key); it is written with mode 0600. Configuration
// files name public keys in the same hex form (Z85 would clash with INI's
// comment and quoting characters).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace roam::proto {

struct KeyPair {
  std::string public_key;  // 32 raw bytes
  std::string secret_key;  // 32 raw bytes
};

// A fresh key pair from libzmq; ENOTSUP when libzmq was built without CURVE.
Result<KeyPair> generate_keypair();

// Writes `keys` to `path` (created with mode 0600; an existing file is EEXIST).
Status write_key_file(const std::string& path, const KeyPair& keys);
Result<KeyPair> read_key_file(const std::string& path);

std::string to_hex(std::string_view raw);
// 32 raw bytes from 64 hex digits, or EINVAL naming `what`.
Result<std::string> key_from_hex(std::string_view hex, const std::string& what);

}  // namespace roam::proto
