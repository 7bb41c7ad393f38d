// Direct and buffered I/O stay coherent: after an O_DIRECT write completes
// (synchronous or asynchronous), a buffered read of the same range returns
// the new bytes, even while other threads keep reading the file through the
// page cache (which may cache the old bytes while the write is in flight).
// What xfstests' generic/451 checks; databases and VM images mix the two.
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "posix_helpers.h"

using namespace roamtest;

namespace {

constexpr size_t kFileBytes = 640 * 1024;  // generic/451's size
constexpr size_t kAlign = 4096;
constexpr int kRounds = 200;
constexpr int kReaders = 2;

// Kernel AIO without libaio: io_setup, io_submit, io_getevents, io_destroy.
class AioContext {
 public:
  AioContext() { REQUIRE(::syscall(SYS_io_setup, 1, &ctx_) == 0); }
  ~AioContext() { ::syscall(SYS_io_destroy, ctx_); }
  AioContext(const AioContext&) = delete;
  AioContext& operator=(const AioContext&) = delete;

  // Submits one pwrite of `len` bytes at offset 0 and waits for it; returns
  // its result (bytes written or -errno).
  long long pwrite_and_wait(int fd, const void* buf, size_t len) {
    iocb cb{};
    cb.aio_fildes = static_cast<uint32_t>(fd);
    cb.aio_lio_opcode = IOCB_CMD_PWRITE;
    cb.aio_buf = reinterpret_cast<uint64_t>(buf);
    cb.aio_nbytes = len;
    iocb* cbs[] = {&cb};
    if (::syscall(SYS_io_submit, ctx_, 1, cbs) != 1) return -errno;
    io_event ev{};
    if (::syscall(SYS_io_getevents, ctx_, 1, 1, &ev, nullptr) != 1) return -errno;
    return ev.res;
  }

 private:
  aio_context_t ctx_ = 0;
};

// A page-aligned buffer of `n` bytes of `fill`, as O_DIRECT needs.
std::unique_ptr<char, decltype(&std::free)> aligned_buffer(size_t n, char fill) {
  void* p = nullptr;
  REQUIRE(::posix_memalign(&p, kAlign, n) == 0);
  std::memset(p, fill, n);
  return {static_cast<char*>(p), &std::free};
}

// The first byte of the file read through the page cache that is not `fill`,
// as an offset; -1 when every byte is `fill`, -2 on a short read.
long long first_stale_byte(const std::string& path, char fill) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return -2;
  std::string got(kFileBytes, '\0');
  ssize_t n = ::pread(fd, got.data(), got.size(), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(kFileBytes)) return -2;
  size_t at = got.find_first_not_of(fill);
  return at == std::string::npos ? -1 : static_cast<long long>(at);
}

}  // namespace

TEST_CASE("buffered reads see completed O_DIRECT writes, async or not, while others read", "[integration]") {
  MountFixture fx;
  const std::string path = fx.path("mixed");
  auto a = aligned_buffer(kFileBytes, 'a');
  auto b = aligned_buffer(kFileBytes, 'b');
  write_file(path, std::string(kFileBytes, 'x'));

  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i)
    readers.emplace_back([&] {
      std::string buf(kFileBytes, '\0');
      while (!stop.load()) {
        int fd = ::open(path.c_str(), O_RDONLY);
        if (fd < 0) continue;
        [[maybe_unused]] ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
        ::close(fd);
      }
    });

  AioContext aio;
  int stale_round = -1;
  long long stale_at = -1;
  for (int round = 0; round < kRounds && stale_round < 0; ++round) {
    const char fill = round % 2 ? 'b' : 'a';
    const char* data = round % 2 ? b.get() : a.get();
    int fd = ::open(path.c_str(), O_WRONLY | O_DIRECT);
    REQUIRE(fd >= 0);
    long long written = round % 4 < 2 ? aio.pwrite_and_wait(fd, data, kFileBytes)
                                      : static_cast<long long>(::pwrite(fd, data, kFileBytes, 0));
    ::close(fd);
    REQUIRE(written == static_cast<long long>(kFileBytes));
    const long long at = first_stale_byte(path, fill);
    if (at != -1) stale_round = round, stale_at = at;
  }
  stop = true;
  for (auto& t : readers) t.join();
  INFO("round " << stale_round << ": first stale byte at " << stale_at << " (-2: short read)");
  CHECK(stale_round == -1);
}
