// The desktops whose agents are connected: routing ids and liveness counters
// (the Paranoid Pirate pattern). Any message from an agent resets its counter
// to `liveness`; each heartbeat interval without one decrements it; at zero
// the desktop is dead until it registers again.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace roam::broker {

class Peers {
 public:
  explicit Peers(int liveness) : liveness_(liveness) {}

  // A message arrived from `desktop` through `routing_id`.
  void seen(const std::string& desktop, const std::string& routing_id);
  bool alive(const std::string& desktop) const;
  std::optional<std::string> routing_id(const std::string& desktop) const;
  // The desktop that last used `routing_id`, if any.
  std::optional<std::string> desktop_of(const std::string& routing_id) const;
  std::vector<std::string> alive_desktops() const;
  // One heartbeat interval passed; returns the desktops that just died.
  std::vector<std::string> tick();

 private:
  struct Peer {
    std::string routing_id;
    int liveness = 0;
  };
  int liveness_;
  std::map<std::string, Peer> peers_;
};

}  // namespace roam::broker
