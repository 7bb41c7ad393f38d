#include "broker/peers.h"

namespace roam::broker {

void Peers::seen(const std::string& desktop, const std::string& routing_id) {
  peers_[desktop] = Peer{routing_id, liveness_};
}

bool Peers::alive(const std::string& desktop) const {
  auto it = peers_.find(desktop);
  return it != peers_.end() && it->second.liveness > 0;
}

std::optional<std::string> Peers::routing_id(const std::string& desktop) const {
  if (!alive(desktop)) return std::nullopt;
  return peers_.at(desktop).routing_id;
}

std::optional<std::string> Peers::desktop_of(const std::string& routing_id) const {
  for (const auto& [desktop, peer] : peers_)
    if (peer.routing_id == routing_id) return desktop;
  return std::nullopt;
}

std::vector<std::string> Peers::alive_desktops() const {
  std::vector<std::string> out;
  for (const auto& [desktop, peer] : peers_)
    if (peer.liveness > 0) out.push_back(desktop);
  return out;
}

std::vector<std::string> Peers::tick() {
  std::vector<std::string> died;
  for (auto& [desktop, peer] : peers_)
    if (peer.liveness > 0 && --peer.liveness == 0) died.push_back(desktop);
  return died;
}

}  // namespace roam::broker
