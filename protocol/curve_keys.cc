#include "protocol/curve_keys.h"

#include <fcntl.h>
#include <unistd.h>
#include <zmq.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace roam::proto {

Result<KeyPair> generate_keypair() {
  if (!zmq_has("curve")) return Status::error(ENOTSUP, "this libzmq has no CURVE support");
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0) return Status::error(zmq_errno(), "cannot generate a CURVE key pair");
  KeyPair k;
  k.public_key.resize(32);
  k.secret_key.resize(32);
  zmq_z85_decode(reinterpret_cast<uint8_t*>(k.public_key.data()), pub);
  zmq_z85_decode(reinterpret_cast<uint8_t*>(k.secret_key.data()), sec);
  return k;
}

std::string to_hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<std::string> key_from_hex(std::string_view hex, const std::string& what) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() != 64) return Status::invalid(what + " must be 64 hex digits");
  std::string raw;
  for (size_t i = 0; i < 64; i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return Status::invalid(what + " must be 64 hex digits");
    raw.push_back(static_cast<char>(hi * 16 + lo));
  }
  return raw;
}

Status write_key_file(const std::string& path, const KeyPair& keys) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Status::error(errno, "cannot create key file " + path + ": " + std::strerror(errno));
  std::string text = "public = " + to_hex(keys.public_key) + "\nsecret = " + to_hex(keys.secret_key) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  int err = errno;
  ::close(fd);
  if (!ok) return Status::error(err, "cannot write key file " + path + ": " + std::strerror(err));
  return Status::ok();
}

Result<KeyPair> read_key_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return Status::error(ENOENT, "cannot read key file " + path);
  std::string line, pub, sec;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name, eq, value;
    words >> name >> eq >> value;
    if (eq != "=") continue;
    if (name == "public") pub = value;
    if (name == "secret") sec = value;
  }
  KeyPair k;
  ROAM_ASSIGN(k.public_key, key_from_hex(pub, "the public key in " + path));
  ROAM_ASSIGN(k.secret_key, key_from_hex(sec, "the secret key in " + path));
  return k;
}

}  // namespace roam::proto
