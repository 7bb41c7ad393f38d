#include "broker/broker.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "broker/policy.h"
#include "broker/provisioner.h"
#include "base/backing_fs.h"
#include "base/sys/daemon.h"

namespace roam::broker {

namespace {

// The state directory holds the users' disks and the agents' enrolled keys.
constexpr mode_t kStateDirMode = 0700;
// ZeroMQ drops the connection of a peer that sends a larger frame: no frame
// may be larger than a whole message may be. decode() then enforces the
// limits over all frames (kMaxMessageBytes, kMaxFrames) and answers EPROTO.
// libzmq hands over a multipart message only once all of its frames have
// arrived and has no bound on their number, so an authenticated peer can
// still make it buffer many frames of up to this size (docs/security.md).
constexpr int64_t kMaxInboundFrameBytes = int64_t{proto::kMaxMessageBytes};
// Messages read per wake-up of the loop at most, so that a flood of requests
// cannot starve the tick (heartbeats, switch timeouts, supervision).
constexpr int kMaxMessagesPerWakeup = 1000;
// Calls to roamfs (history requests) running at once; more wait their turn
// in the client (EAGAIN, "retry in a moment"). Each is a thread that may be
// stuck on a hung roamfs until its timeout.
constexpr size_t kMaxBackgroundCalls = 8;
// Spare desktops the broker provisions are named spare-1, spare-2, ...
constexpr char kSparePrefix[] = "spare-";

bool is_agent_message(const proto::Message& m) {
  return std::holds_alternative<proto::Register>(m) || std::holds_alternative<proto::Heartbeat>(m) ||
         std::holds_alternative<proto::Damage>(m) || std::holds_alternative<proto::DetachDone>(m) ||
         std::holds_alternative<proto::AttachDone>(m);
}

}  // namespace

Broker::Broker(BrokerConfig cfg)
    : cfg_(std::move(cfg)),
      peers_(std::max(1, cfg_.dead_after_ms / proto::kHeartbeatIntervalMs)) {}

Broker::~Broker() {
  if (signal_fd_ >= 0) ::close(signal_fd_);
}

Result<std::unique_ptr<Broker>> Broker::create(BrokerConfig cfg) {
  std::unique_ptr<Broker> b(new Broker(std::move(cfg)));
  ROAM_TRY(b->setup());
  return b;
}

Status Broker::setup() {
  ROAM_ASSIGN(keys_, proto::read_key_file(cfg_.key_file));
  ROAM_TRY(allow_configured_keys());
  ROAM_TRY(make_state_dirs());
  ROAM_TRY(open_registry());
  ROAM_TRY(parse_port_range(cfg_.remote_ports, remote_));
  remote_.address = cfg_.remote_address;
  disks_ = DiskServerConfig{.roamfs = cfg_.roamfs,
                            .exports_dir = cfg_.run_dir + "/exports",
                            .log_dir = cfg_.state_dir + "/logs",
                            .remote_dir = cfg_.run_dir + "/remote",
                            .keys_dir = cfg_.state_dir + "/disks",
                            .remote_bind = cfg_.remote_bind};
  ROAM_TRY(prepare_exports(disks_.exports_dir));
  ROAM_ASSIGN(signal_fd_, stop_signal_fd());
  ROAM_ASSIGN(Background background, Background::create(kMaxBackgroundCalls));
  background_.emplace(std::move(background));
  ROAM_TRY(auth_.bind(ctx_));
  ROAM_TRY(listen());
  switcher_ = make_switcher();
  // roamfs processes of a previous run that still serve their disk are
  // adopted as they are; supervise() re-exports the others once resume()
  // has taken over the switches that were in flight.
  return switcher_->resume();
}

// The operator and agent keys of the configuration (agents the provisioner
// created have their keys in the registry: open_registry()).
Status Broker::allow_configured_keys() {
  ROAM_ASSIGN(auto principals, configured_principals(cfg_.operator_keys, cfg_.agent_keys));
  for (auto& [hex, who] : principals) auth_.allow(hex, std::move(who));
  return Status::ok();
}

Status Broker::make_state_dirs() {
  for (const auto& dir :
       {cfg_.state_dir, cfg_.state_dir + "/disks", cfg_.state_dir + "/desktops", cfg_.state_dir + "/logs"})
    if (::mkdir(dir.c_str(), kStateDirMode) != 0 && errno != EEXIST)
      return Status::error(errno, "cannot create " + dir + ": " + std::strerror(errno));
  // Every user disk the broker creates lives there: say once if a power loss could break them.
  const std::string disks = cfg_.state_dir + "/disks";
  if (std::string w = power_loss_warning(disks, backing_fs_of(disks)); !w.empty())
    std::fprintf(stderr, "roam-broker: warning: %s\n", w.c_str());
  return Status::ok();
}

// Opens the registry and allows the keys the provisioner enrolled.
Status Broker::open_registry() {
  ROAM_ASSIGN(registry_, Registry::open(cfg_.state_dir + "/registry"));
  ROAM_ASSIGN(auto desktops, registry_.list(Table::kDesktops));
  for (const auto& [id, row] : desktops) {
    ROAM_ASSIGN(auto d, desktop_from_row(id, row));
    if (!d.public_key.empty()) auth_.allow(d.public_key, Principal{Principal::Role::kAgent, id});
  }
  return Status::ok();
}

// The ROUTER socket agents and roamctl connect to (CURVE server).
Status Broker::listen() {
  try {
    router_ = zmq::socket_t(ctx_, zmq::socket_type::router);
    router_.set(zmq::sockopt::linger, 0);
    router_.set(zmq::sockopt::curve_server, true);
    router_.set(zmq::sockopt::curve_secretkey, zmq::const_buffer(keys_.secret_key.data(), keys_.secret_key.size()));
    router_.set(zmq::sockopt::maxmsgsize, kMaxInboundFrameBytes);
    router_.bind(cfg_.endpoint);
  } catch (const zmq::error_t& e) {
    return Status::error(e.num(), "cannot listen on " + cfg_.endpoint + ": " + e.what());
  }
  return Status::ok();
}

// The switcher over this broker: commands go out on the ROUTER, the disks are
// served by roamfs processes on this host.
std::unique_ptr<Switcher> Broker::make_switcher() {
  return std::make_unique<Switcher>(SwitchEnv{
      registry_, peers_, disk_host_, clock_, cfg_.timeouts, remote_,
      [this](const std::string& desktop, const proto::Message& m) -> Status {
        auto rid = peers_.routing_id(desktop);
        if (!rid) return Status::error(EHOSTDOWN, "desktop " + desktop + " is not connected");
        return proto::send_routed(router_, *rid, m);
      },
      [this](const Requester& r, const Status& s, std::vector<std::string> rows) {
        reply(r.routing_id, r.request_id, s, std::move(rows));
      },
      [this](const std::string& desktop) { return provision(desktop); }});
}

Status Broker::run() {
  std::fprintf(stderr, "roam-broker: listening on %s\n", cfg_.endpoint.c_str());
  using Clock = std::chrono::steady_clock;
  auto next_tick = Clock::now();
  for (;;) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_tick - Clock::now());
    zmq::pollitem_t items[] = {{router_.handle(), 0, ZMQ_POLLIN, 0},
                               {auth_.socket().handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, signal_fd_, ZMQ_POLLIN, 0},
                               {nullptr, background_->fd(), ZMQ_POLLIN, 0}};
    try {
      zmq::poll(items, std::size(items), std::max(wait, std::chrono::milliseconds(0)));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) return Status::error(e.num(), std::string("poll: ") + e.what());
    }
    if (items[2].revents & ZMQ_POLLIN) {
      std::fprintf(stderr, "roam-broker: stopping on a signal\n");
      return Status::ok();
    }
    if (items[3].revents & ZMQ_POLLIN) background_->run_finished();
    if (items[1].revents & ZMQ_POLLIN) {
      if (Status s = auth_.handle_one(); !s) std::fprintf(stderr, "roam-broker: %s\n", s.message().c_str());
    }
    for (int n = 0; n < kMaxMessagesPerWakeup && (items[0].revents & ZMQ_POLLIN); ++n) {
      ROAM_ASSIGN(auto in, proto::receive_routed(router_));
      if (!in) break;
      on_message(*in);
    }
    if (Clock::now() >= next_tick) {
      on_tick();
      next_tick = Clock::now() + std::chrono::milliseconds(proto::kHeartbeatIntervalMs);
    }
  }
}

void Broker::on_message(proto::Routed& in) {
  auto who = auth_.principal(in.user_id);
  if (!who) return;  // cannot happen with CURVE + ZAP; never serve an unknown peer
  if (!in.message) return reply(in.routing_id, 0, in.message.status());
  const auto& m = in.message.value();
  if (is_agent_message(m)) {
    if (who->role != Principal::Role::kAgent)
      return reply(in.routing_id, 0, Status::error(EPERM, "only an agent key may send agent messages"));
    return handle_agent(*who, in.user_id, in.routing_id, m);
  }
  handle_request(*who, in.routing_id, m);
}

// The desktop's record, made if the registry does not know it yet, with
// the mount driver and the key its agent registered with (the key a remote
// disk's roamfs will allow). Written only when one of them changed.
Status Broker::remember_registration(const std::string& desktop, const std::string& key_hex,
                                     const proto::Register& r) {
  ROAM_ASSIGN(auto known, find_desktop(registry_, desktop));
  DesktopRecord rec = known.value_or(DesktopRecord{});
  if (known && rec.driver == r.mount_driver && rec.registered_key == key_hex) return Status::ok();
  rec.driver = r.mount_driver;
  rec.registered_key = key_hex;
  return registry_.put(Table::kDesktops, desktop, to_row(rec));
}

void Broker::handle_agent(const Principal& who, const std::string& key_hex, const std::string& rid,
                          const proto::Message& m) {
  if (auto* r = std::get_if<proto::Register>(&m); r && r->desktop != who.desktop)
    return reply(rid, 0, Status::error(EPERM, "this key belongs to desktop " + who.desktop + ", not " + r->desktop));
  const bool registering = std::holds_alternative<proto::Register>(m);
  if (!registering && peers_.desktop_of(rid) != who.desktop) {
    return reply(rid, 0, Status::error(ENOTCONN, "register first"));
  }
  peers_.seen(who.desktop, rid);
  std::visit(proto::Overloaded{
                 [&](const proto::Register& r) {
                   if (Status s = remember_registration(who.desktop, key_hex, r); !s)
                     std::fprintf(stderr, "roam-broker: %s\n", s.message().c_str());
                   std::fprintf(stderr, "roam-broker: desktop %s registered (%s)\n", who.desktop.c_str(),
                                r.mount_driver.c_str());
                   (void)proto::send_routed(router_, rid, proto::Heartbeat{});
                   switcher_->on_register(who.desktop);
                 },
                 [&](const proto::Damage& d) { failover(who.desktop, "damage: " + d.reason); },
                 [&](const proto::DetachDone& d) { switcher_->on_detach_done(who.desktop, d); },
                 [&](const proto::AttachDone& a) { switcher_->on_attach_done(who.desktop, a); },
                 [&](const auto&) {},
             },
             m);
}

void Broker::on_tick() {
  for (const auto& desktop : peers_.tick()) {
    std::fprintf(stderr, "roam-broker: desktop %s stopped sending heartbeats\n", desktop.c_str());
    failover(desktop, "dead");
  }
  for (const auto& desktop : peers_.alive_desktops())
    if (auto rid = peers_.routing_id(desktop)) (void)proto::send_routed(router_, *rid, proto::Heartbeat{});
  switcher_->on_tick();
  reap_children();
  supervise();
}

// A roamfs that is gone while its disk is attached and no switch is running
// crashed (or was killed): re-export the disk to the same desktop under a new
// epoch. Checked by pid and command line, so it also covers roamfs processes
// adopted from a previous broker run, which are not our children.
void Broker::supervise() {
  auto rows = registry_.list(Table::kAttachments);
  if (!rows) return;
  for (const auto& [user, row] : *rows) {
    auto att = attachment_from_row(user, row);
    if (!att || att->desktop.empty() || switcher_->running_for(user) ||
        roamfs_alive(static_cast<pid_t>(att->roamfs_pid), att->mount_point))
      continue;
    std::fprintf(stderr, "roam-broker: roamfs of %s (pid %lld) is gone; re-exporting to %s\n", user.c_str(),
                 static_cast<long long>(att->roamfs_pid), att->desktop.c_str());
    if (Status s = switcher_->start({user, att->desktop, "recovery", true, std::nullopt}); !s)
      std::fprintf(stderr, "roam-broker: recovery of %s: %s\n", user.c_str(), s.message().c_str());
  }
}

void Broker::failover(const std::string& desktop, const std::string& reason) {
  auto rec = find_desktop(registry_, desktop);
  if (!rec || !*rec) return;
  bool damage = reason != "dead";
  if (damage && (*rec)->state == "ok") {
    (*rec)->state = "damaged";
    (void)registry_.put(Table::kDesktops, desktop, to_row(**rec));
    std::fprintf(stderr, "roam-broker: desktop %s reported %s\n", desktop.c_str(), reason.c_str());
  }
  auto user = user_on_desktop(registry_, desktop);
  if (!user || !*user || switcher_->running_for(**user)) return;
  auto target = spare_desktop(desktop);
  Status s = target ? switcher_->start({**user, *target, damage ? "damage" : "dead", true, std::nullopt})
                    : target.status();
  if (!s) std::fprintf(stderr, "roam-broker: failover of %s: %s\n", (*user)->c_str(), s.message().c_str());
}

// A connected, healthy desktop with no user, or else a new id to provision.
Result<std::string> Broker::spare_desktop(const std::string& except) {
  for (const auto& d : peers_.alive_desktops()) {
    if (d == except) continue;
    ROAM_ASSIGN(auto rec, find_desktop(registry_, d));
    ROAM_ASSIGN(auto occupant, user_on_desktop(registry_, d));
    if (rec && rec->state == "ok" && !occupant) return d;
  }
  for (int n = 1;; ++n) {
    std::string id = kSparePrefix + std::to_string(n);
    ROAM_ASSIGN(auto rec, find_desktop(registry_, id));
    if (!rec) return id;
  }
}

Status Broker::provision(const std::string& desktop) {
  if (cfg_.provisioner.empty())
    return Status::not_found("desktop " + desktop + " does not exist and no provisioner is configured");
  std::string key_file = cfg_.state_dir + "/desktops/" + desktop + ".key";
  ::unlink(key_file.c_str());
  ROAM_ASSIGN(auto keys, proto::generate_keypair());
  ROAM_TRY(proto::write_key_file(key_file, keys));
  std::string hex = proto::to_hex(keys.public_key);
  ROAM_TRY(registry_.put(Table::kDesktops, desktop, to_row(DesktopRecord{"ok", hex})));
  auth_.allow(hex, Principal{Principal::Role::kAgent, desktop});
  const std::string& endpoint = cfg_.agent_endpoint.empty() ? cfg_.endpoint : cfg_.agent_endpoint;
  ROAM_ASSIGN(pid_t pid, run_provisioner({cfg_.provisioner, "create", desktop, key_file, endpoint,
                                           proto::to_hex(keys_.public_key),
                                           cfg_.state_dir + "/desktops/" + desktop + ".log",
                                           disks_.exports_dir + "/" + desktop}));
  std::fprintf(stderr, "roam-broker: provisioning desktop %s (pid %d)\n", desktop.c_str(), pid);
  return Status::ok();
}

void Broker::reply(const std::string& rid, uint64_t request_id, const Status& s, std::vector<std::string> rows,
                   std::string message) {
  auto r = proto::reply_for(request_id, s);
  if (s && !message.empty()) r.message = std::move(message);
  const size_t total = rows.empty() ? 0 : rows.size() - 1;  // rows[0] is the header
  r.rows = std::move(rows);
  if (const size_t dropped = proto::bound_rows(r.rows); dropped != 0 && s)
    r.message = "only the first " + std::to_string(total - dropped) + " of " + std::to_string(total) +
                " rows fit in one reply";
  (void)proto::send_routed(router_, rid, r);
}

}  // namespace roam::broker
