#include "protocol/local_socket.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace roam::proto {

namespace {

void put_u32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t get_u32(std::string_view b, size_t at) {
  auto byte = [&](size_t i) { return uint32_t{static_cast<unsigned char>(b[at + i])}; };
  return (byte(0) << 24) | (byte(1) << 16) | (byte(2) << 8) | byte(3);
}

Status too_large(const std::string& what) { return Status::error(EPROTO, "malformed message: " + what); }

}  // namespace

Status write_message(int fd, const Message& m) {
  const auto frames = encode(m);
  std::string out;
  put_u32(out, static_cast<uint32_t>(frames.size()));
  for (const auto& f : frames) {
    put_u32(out, static_cast<uint32_t>(f.size()));
    out += f;
  }
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::send(fd, out.data() + done, out.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::error(errno, std::string("writing the local socket: ") + std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

std::optional<Result<Message>> parse_message(std::string_view bytes) {
  if (bytes.size() < 4) return std::nullopt;
  const uint32_t count = get_u32(bytes, 0);
  if (count > kMaxFrames) return Result<Message>(too_large("more than " + std::to_string(kMaxFrames) + " frames"));
  std::vector<std::string_view> frames;
  size_t at = 4, total = 0;
  for (uint32_t i = 0; i < count; ++i) {
    if (bytes.size() - at < 4) return std::nullopt;
    const uint32_t len = get_u32(bytes, at);
    at += 4;
    total += len;
    if (total > kMaxMessageBytes)
      return Result<Message>(too_large("larger than " + std::to_string(kMaxMessageBytes) + " bytes"));
    if (bytes.size() - at < len) return std::nullopt;
    frames.push_back(bytes.substr(at, len));
    at += len;
  }
  return decode(frames);
}

Result<Message> read_message(int fd) {
  std::string buffer;
  char chunk[65536];
  for (;;) {
    if (auto parsed = parse_message(buffer)) return std::move(*parsed);
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::error(errno, std::string("reading the local socket: ") + std::strerror(errno));
    if (n == 0) return Status::error(EPIPE, "the other side closed the local socket");
    buffer.append(chunk, static_cast<size_t>(n));
  }
}

}  // namespace roam::proto
