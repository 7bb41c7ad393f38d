#include "broker/policy.h"

#include <map>

#include "broker/records.h"
#include "protocol/curve_keys.h"

namespace roam::broker {

namespace {

std::string describe(const Principal& p) {
  return p.role == Principal::Role::kOperator ? "an operator key" : "the agent key of desktop " + p.desktop;
}

}  // namespace

Result<std::vector<std::pair<std::string, Principal>>> configured_principals(
    const std::vector<std::string>& operator_keys, const std::vector<std::string>& agent_keys) {
  std::vector<std::pair<std::string, Principal>> entries;
  for (const auto& hex : operator_keys) {
    ROAM_ASSIGN(auto raw, proto::key_from_hex(hex, "operator key " + hex));
    entries.emplace_back(proto::to_hex(raw), Principal{Principal::Role::kOperator, ""});
  }
  for (const auto& entry : agent_keys) {
    const auto colon = entry.find(':');
    const std::string desktop = entry.substr(0, colon == std::string::npos ? 0 : colon);
    if (!proto::valid_name(desktop)) return Status::invalid("agent key '" + entry + "' must be DESKTOP:HEX");
    ROAM_ASSIGN(auto raw, proto::key_from_hex(entry.substr(colon + 1), "agent key of desktop " + desktop));
    entries.emplace_back(proto::to_hex(raw), Principal{Principal::Role::kAgent, desktop});
  }
  std::map<std::string, const Principal*> seen;
  for (const auto& [hex, who] : entries) {
    auto [it, fresh] = seen.emplace(hex, &who);
    if (!fresh)
      return Status::invalid("key " + hex + " is listed as " + describe(*it->second) + " and as " + describe(who) +
                             "; a key may stand for one principal only");
  }
  return entries;
}

Status agent_may_request(const Registry& reg, const Principal& who, const proto::Message& m) {
  const auto* s = std::get_if<proto::SwitchRequest>(&m);
  if (!s) return Status::error(EPERM, "an agent key may only switch the user of its own desktop");
  ROAM_ASSIGN(auto own, user_on_desktop(reg, who.desktop));
  if (!own || *own != s->user)
    return Status::error(EPERM, "an agent key may only switch the user of its own desktop");
  ROAM_ASSIGN(auto target, find_desktop(reg, s->desktop));
  if (!target)
    return Status::error(EPERM, "desktop " + s->desktop +
                                    " does not exist, and only an operator key may have the broker provision one");
  return Status::ok();
}

}  // namespace roam::broker
