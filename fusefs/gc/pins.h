// Pins: a read-only past view (roamfs --at) needs every op log record after
// the moment it shows. It pins that moment with a file STORE/pins/PID holding
// the seq; GC (gc.h) never drops a record after the oldest pin of a process
// that is still alive. Pins of dead processes are ignored and removed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"

namespace roam {

class Pin {
 public:
  // Creates the pin file (and the pins directory). EACCES etc. as errors.
  static Result<Pin> take(const std::string& store_dir, uint64_t seq);
  Pin(Pin&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  Pin& operator=(Pin&&) = delete;
  Pin(const Pin&) = delete;
  ~Pin();  // removes the pin file

 private:
  explicit Pin(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// The lowest seq pinned by a live process, if any.
std::optional<uint64_t> oldest_pin(const std::string& store_dir);

}  // namespace roam
