#include "broker/policy.h"

#include "broker/records.h"

namespace roam::broker {

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
