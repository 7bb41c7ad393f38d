// The switch state machine (broker/switch.h) driven through a fake
// environment: a real registry in a temporary directory and the real Peers,
// with fake send/reply/provision that record their calls, a fake disk host
// and a clock the test moves. No process, socket or mount.
//
// A broker restart is a new Switcher (and new Peers: a fresh broker knows no
// connected desktop) over the registry as it was persisted, then resume().
// Release and export run without waiting for anyone, so a restart "inside"
// them copies the registry's file at the moment the disk host is called,
// which is what a broker killed at that instant leaves behind.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include "broker/records.h"
#include "broker/registry.h"
#include "broker/switch.h"
#include "tests/unit/helpers.h"

using namespace roam;
using namespace roam::broker;
using namespace std::chrono_literals;
using roam::testing::must;
using roam::testing::TempDir;

namespace {

constexpr int kLiveness = 4;
constexpr SwitchTimeouts kTimeouts{30000, 5000, 10000, 2000};  // provision, detach, attach, grace
constexpr pid_t kSourcePid = 500;                               // roamfs of the attachment before the switch

class FakeClock final : public SwitchClock {
 public:
  std::chrono::steady_clock::time_point now() const override { return steady_; }
  int64_t wall_ns() const override { return wall_ns_; }
  void advance(std::chrono::milliseconds d) {
    steady_ += d;
    wall_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
  }

 private:
  std::chrono::steady_clock::time_point steady_{std::chrono::hours(1)};
  int64_t wall_ns_ = int64_t{1'800'000'000} * 1'000'000'000;
};

struct Started {
  std::string user, store, mount_point;
  std::optional<RemoteServe> remote;
};
struct Stopped {
  pid_t pid;
  std::string mount_point;
  bool fence;
};

class FakeDiskHost final : public DiskHost {
 public:
  Result<std::string> export_dir(const std::string& desktop) override { return "/exports/" + desktop; }
  Result<std::string> private_dir() override { return std::string("/remote"); }
  Result<std::string> remote_key(const std::string& user) override { return key_of(user); }
  Result<pid_t> start(const std::string& user, const std::string& store, const std::string& mount_point,
                      const std::optional<RemoteServe>& remote) override {
    if (before_call) before_call("start");
    if (!start_result) return start_result;
    started.push_back({user, store, mount_point, remote});
    return next_pid++;
  }
  // The public key of `user`'s remote roamfs, as the fake makes it.
  static std::string key_of(const std::string& user) { return "key-of-" + user; }
  Status stop(pid_t pid, const std::string& mount_point, bool fence) override {
    if (before_call) before_call("stop");
    stopped.push_back({pid, mount_point, fence});
    return Status::ok();
  }

  std::vector<Started> started;
  std::vector<Stopped> stopped;
  Status start_result;
  pid_t next_pid = 1000;
  std::function<void(const std::string& call)> before_call;  // where a test takes its crash snapshot
};

struct Sent {
  std::string desktop;
  proto::Message message;
};
struct Replied {
  Requester to;
  Status status;
  std::vector<std::string> rows;
};

std::vector<std::string> step_names(const std::string& steps) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start < steps.size()) {
    size_t comma = std::min(steps.find(',', start), steps.size());
    names.push_back(steps.substr(start, steps.find('=', start) - start));
    start = comma + 1;
  }
  return names;
}

// The broker around one Switcher, and the host's and agents' fakes.
class World {
 public:
  World() {
    registry = must(Registry::open(dir.sub("registry")));
    switcher = make_switcher();
  }

  // --- the registry before a switch ---
  void add_user(const std::string& user, bool with_disk = true) {
    REQUIRE_OK(registry.put(Table::kUsers, user, {"1"}));
    if (with_disk) REQUIRE_OK(registry.put(Table::kDisks, user, to_row(DiskRecord{"/stores/" + user, 1})));
  }
  void add_desktop(const std::string& id, bool connected = true, const std::string& state = "ok") {
    REQUIRE_OK(registry.put(Table::kDesktops, id, to_row(DesktopRecord{state, ""})));
    if (connected) peers.seen(id, "rid-" + id);
  }
  // A connected desktop whose agent registered the remote driver with key "agent-key-ID".
  void add_remote_desktop(const std::string& id) {
    REQUIRE_OK(registry.put(Table::kDesktops, id, to_row(DesktopRecord{"ok", "", "remote", "agent-key-" + id})));
    peers.seen(id, "rid-" + id);
  }
  // `user`'s disk (epoch 1) served by roamfs kSourcePid and attached to `desktop`.
  void attach(const std::string& user, const std::string& desktop) {
    const std::string mount_point = "/exports/" + desktop + "/" + user + "@1";
    REQUIRE_OK(registry.put(Table::kAttachments, user, to_row(AttachmentRecord{desktop, 1, mount_point, kSourcePid})));
  }
  // alice on A; A and B connected: the usual start of a switch.
  void alice_on_a() {
    add_user("alice");
    add_desktop("A");
    add_desktop("B");
    attach("alice", "A");
  }

  // --- what the agents and the loop do ---
  void connect(const std::string& desktop) {
    peers.seen(desktop, "rid-" + desktop);
    switcher->on_register(desktop);
  }
  void detach_done(const std::string& desktop, uint64_t code, const std::string& message = "") {
    switcher->on_detach_done(desktop, proto::DetachDone{switch_id(), code, message});
  }
  void attach_done(const std::string& desktop, uint64_t code, const std::string& message = "") {
    switcher->on_attach_done(desktop, proto::AttachDone{switch_id(), code, message});
  }
  void tick_after(std::chrono::milliseconds d) {
    clock.advance(d);
    switcher->on_tick();
  }
  Status switch_alice(const std::string& target, bool force = true) {
    return switcher->start({"alice", target, "request", force, Requester{"rid-roamctl", 42}});
  }

  // --- a broker restart ---
  void restart() {
    switcher.reset();
    peers = Peers(kLiveness);
    switcher = make_switcher();
    REQUIRE_OK(switcher->resume());
  }
  // Keeps a copy of the registry as it is on disk now (no transaction is open).
  void snapshot() {
    std::filesystem::create_directory(dir.sub("snapshot"));
    std::filesystem::copy_file(dir.sub("registry/data.mdb"), dir.sub("snapshot/data.mdb"),
                               std::filesystem::copy_options::overwrite_existing);
  }
  // A restart after the broker was killed when snapshot() ran: the
  // registry is what it was then, and the calls recorded since are forgotten.
  void restart_from_snapshot() {
    switcher.reset();
    registry = must(Registry::open(dir.sub("snapshot")));
    host.started.clear();
    host.stopped.clear();
    host.before_call = nullptr;
    sent.clear();
    replies.clear();
    peers = Peers(kLiveness);
    switcher = make_switcher();
    REQUIRE_OK(switcher->resume());
  }

  // alice switches from A to B, A detaches cleanly, and the broker is killed
  // as it calls the disk host's `call` ("stop": the release, "start": the
  // export), then restarted.
  void killed_at_host_call(const std::string& call) {
    host.before_call = [this, call](const std::string& c) {
      if (c == call) snapshot();
    };
    REQUIRE_OK(switch_alice("B"));
    detach_done("A", 0);
    restart_from_snapshot();
  }

  // --- what the test looks at ---
  template <typename T>
  std::vector<T> sent_to(const std::string& desktop) const {
    std::vector<T> out;
    for (const auto& s : sent)
      if (const T* m = std::get_if<T>(&s.message); m && s.desktop == desktop) out.push_back(*m);
    return out;
  }
  std::optional<IntentRecord> intent(const std::string& user = "alice") const {
    auto row = must(registry.get(Table::kIntents, user));
    if (!row) return std::nullopt;
    return must(intent_from_row(user, *row));
  }
  std::optional<AttachmentRecord> attachment(const std::string& user = "alice") const {
    return must(find_attachment(registry, user));
  }
  uint64_t epoch(const std::string& user = "alice") const {
    auto disk = must(find_disk(registry, user));
    REQUIRE(disk);
    return disk->epoch;
  }
  // The last audit record: {time, switch id, user, source, target, reason, result, steps}.
  Row last_audit() const {
    auto rows = must(registry.list(Table::kAudit));
    REQUIRE_FALSE(rows.empty());
    return rows.back().second;
  }
  std::vector<std::string> audited_steps() const { return step_names(last_audit().at(7)); }
  // The id of alice's running switch, as persisted (from the detach phase on).
  uint64_t switch_id() const {
    auto persisted = intent();
    REQUIRE(persisted);
    return persisted->switch_id;
  }
  std::string phase(const std::string& user = "alice") const {
    for (const auto& row : switcher->describe())
      if (row[0] == user) return row[3];
    return "";
  }
  // The switch ended, with no intent left behind.
  void require_ended() const {
    REQUIRE_FALSE(switcher->running_for("alice"));
    REQUIRE_FALSE(intent().has_value());
  }
  // The switch ended with `err` and a sentence containing `text`, replied
  // to its requester and recorded in the audit.
  void ended_with(int err, const std::string& text) {
    require_ended();
    REQUIRE(replies.size() == 1);
    CHECK(replies[0].status.err() == err);
    CHECK_THAT(replies[0].status.message(), Catch::Contains(text));
    CHECK(last_audit().at(6) == replies[0].status.message());
  }
  // The phase's deadline `timeout_ms` from now passes.
  void deadline_passes(int timeout_ms) {
    tick_after(std::chrono::milliseconds(timeout_ms - 1));
    REQUIRE(switcher->running_for("alice"));  // not a millisecond early
    tick_after(2ms);
  }
  // B attaches; the switch ends with alice's disk on B under epoch 2 and
  // these steps in the audit.
  void attached_on_b(const std::vector<std::string>& steps) {
    attach_done("B", 0);
    require_ended();
    require_attached("B", 2);
    CHECK(audited_steps() == steps);
  }
  // The export of epoch 2 to B was undone: its roamfs (`pid`; 0 for one
  // whose pid was never known) fenced, the disk attached nowhere, and the
  // audit says so.
  void require_rolled_back(pid_t pid) const {
    REQUIRE_FALSE(host.stopped.empty());
    CHECK(host.stopped.back().pid == pid);
    CHECK(host.stopped.back().mount_point == "/exports/B/alice@2");
    CHECK(host.stopped.back().fence);
    auto att = attachment();
    REQUIRE(att);
    CHECK(att->desktop.empty());
    CHECK(att->mount_point.empty());
    CHECK(att->roamfs_pid == 0);
    auto steps = audited_steps();
    CHECK(std::find(steps.begin(), steps.end(), "rolled-back") != steps.end());
  }
  // alice's disk is attached to `desktop` under epoch `e`, served by the
  // roamfs the fake host started last.
  void require_attached(const std::string& desktop, uint64_t e) const {
    auto att = attachment();
    REQUIRE(att);
    CHECK(att->desktop == desktop);
    CHECK(att->epoch == e);
    CHECK(att->mount_point == "/exports/" + desktop + "/alice@" + std::to_string(e));
    CHECK(att->roamfs_pid == host.next_pid - 1);
    CHECK(epoch() == e);
  }

  TempDir dir;
  Registry registry;
  Peers peers{kLiveness};
  FakeDiskHost host;
  FakeClock clock;
  std::vector<Sent> sent;
  std::vector<Replied> replies;
  std::vector<std::string> provisioned;
  Status provision_result;
  int failing_sends = 0;  // the next sends that fail, as to a peer whose queue is full
  RemoteConfig remote{7000, 7002, ""};  // set before make_switcher (restart) to change it
  std::unique_ptr<Switcher> switcher;

 private:
  std::unique_ptr<Switcher> make_switcher() {
    return std::make_unique<Switcher>(SwitchEnv{
        registry, peers, host, clock, kTimeouts, remote,
        [this](const std::string& desktop, const proto::Message& m) -> Status {
          if (!peers.alive(desktop)) return Status::error(EHOSTDOWN, desktop + " is not connected");
          if (failing_sends > 0) {
            --failing_sends;
            return Status::error(EAGAIN, "queue full");
          }
          sent.push_back({desktop, m});
          return Status::ok();
        },
        [this](const Requester& r, const Status& s, std::vector<std::string> rows) {
          replies.push_back({r, s, std::move(rows)});
        },
        [this](const std::string& desktop) {
          provisioned.push_back(desktop);
          if (!provision_result) return provision_result;
          return registry.put(Table::kDesktops, desktop, to_row(DesktopRecord{"ok", "hex"}));
        }});
  }
};

const std::vector<std::string> kCleanSteps{"checked", "target-ready", "detached", "released",
                                           "exported", "attached", "end"};

}  // namespace

// ---------------------------------------------------------------- check

TEST_CASE("a switch that cannot be done is refused at once and changes nothing", "[switch]") {
  World w;
  w.alice_on_a();
  w.add_user("bob");
  w.add_user("carol", false);
  w.add_desktop("C");
  w.attach("bob", "C");
  w.add_desktop("D", true, "damaged");
  w.add_desktop("E", false);

  // Starts a switch that must be refused with `err` and a sentence containing `text`.
  auto refused = [&w](const std::string& user, const std::string& target, int err, const std::string& text) {
    Status st = w.switcher->start({user, target, "request", true, Requester{"rid-roamctl", 1}});
    CHECK(st.err() == err);
    CHECK_THAT(st.message(), Catch::Contains(text));
  };
  SECTION("unknown user") { refused("nobody", "B", ENOENT, "user nobody does not exist"); }
  SECTION("a user without a disk") { refused("carol", "B", ENOENT, "has no disk"); }
  SECTION("a damaged target") { refused("alice", "D", EHOSTDOWN, "desktop D is damaged"); }
  SECTION("a target another user is on") { refused("alice", "C", EBUSY, "in use by user bob"); }
  SECTION("the desktop the user is already on") { refused("alice", "A", EALREADY, "already on desktop A"); }
  SECTION("the target of another user's running switch") {
    w.add_user("dave");
    REQUIRE_OK(w.switcher->start({"dave", "E", "request", true, std::nullopt}));  // waits for E
    REQUIRE(w.switcher->running_for("dave"));
    refused("alice", "E", EBUSY, "target of a running switch of dave");
  }
  SECTION("a second switch of the same user") {
    REQUIRE_OK(w.switch_alice("E"));  // waits for E
    refused("alice", "B", EBUSY, "already running");
    CHECK(w.phase() == "provision");
  }
  CHECK(w.sent.empty());
  CHECK(w.provisioned.empty());
  CHECK(w.replies.empty());  // refusals are returned, not replied
  CHECK_FALSE(w.intent().has_value());
  CHECK(w.attachment()->desktop == "A");
  CHECK(w.epoch() == 1);
}

TEST_CASE("a recovery may re-export a disk to the desktop it is on", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switcher->start({"alice", "A", "recovery", true, std::nullopt}));
  CHECK(w.phase() == "detach");
  CHECK(w.sent_to<proto::Detach>("A").size() == 1);
}

// ---------------------------------------------------------------- a whole switch

TEST_CASE("a clean switch: detach, graceful release, new epoch, attach, audit, reply", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));

  auto detach = w.sent_to<proto::Detach>("A");
  REQUIRE(detach.size() == 1);
  CHECK(detach[0].user == "alice");
  CHECK(detach[0].force);
  CHECK(detach[0].grace_ms == uint64_t(kTimeouts.grace_ms));
  CHECK(detach[0].request_id == w.switch_id());
  REQUIRE(w.intent());
  CHECK(w.intent()->phase == "detach");
  CHECK(w.intent()->source == "A");
  CHECK(w.intent()->target == "B");
  CHECK(w.host.stopped.empty());  // nothing happens to the disk before the source answers

  w.clock.advance(7ms);
  w.detach_done("A", 0, "detached");
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].pid == kSourcePid);
  CHECK(w.host.stopped[0].mount_point == "/exports/A/alice@1");
  CHECK_FALSE(w.host.stopped[0].fence);
  REQUIRE(w.host.started.size() == 1);
  CHECK(w.host.started[0].user == "alice");
  CHECK(w.host.started[0].store == "/stores/alice");
  CHECK(w.host.started[0].mount_point == "/exports/B/alice@2");

  // Exported, not yet attached: the new epoch and its roamfs are persisted.
  CHECK(w.phase() == "attach");
  CHECK(w.intent()->phase == "attach");
  auto att = w.attachment();
  REQUIRE(att);
  CHECK(att->desktop.empty());
  CHECK(att->epoch == 2);
  CHECK(att->roamfs_pid == 1000);
  CHECK(w.epoch() == 2);
  auto attach = w.sent_to<proto::Attach>("B");
  REQUIRE(attach.size() == 1);
  CHECK(attach[0].export_path == "/exports/B/alice@2");
  CHECK(attach[0].request_id == w.switch_id());

  w.attach_done("B", 0, "attached");
  w.require_ended();
  w.require_attached("B", 2);
  REQUIRE(w.replies.size() == 1);
  CHECK(w.replies[0].status.is_ok());
  CHECK(w.replies[0].to.routing_id == "rid-roamctl");
  CHECK(w.replies[0].to.request_id == 42);
  REQUIRE(w.replies[0].rows.size() == kCleanSteps.size() + 1);
  CHECK(w.replies[0].rows[0] == proto::join_cells({"step", "ms"}));
  CHECK(w.replies[0].rows[3] == proto::join_cells({"detached", "7"}));
  Row audit = w.last_audit();
  CHECK(audit[2] == "alice");
  CHECK(audit[3] == "A");
  CHECK(audit[4] == "B");
  CHECK(audit[5] == "request");
  CHECK(audit[6] == "ok");
  CHECK(w.audited_steps() == kCleanSteps);
}

TEST_CASE("a disk attached nowhere is exported and attached without a detach", "[switch]") {
  World w;
  w.add_user("alice");
  w.add_desktop("B");
  REQUIRE_OK(w.switch_alice("B"));
  CHECK(w.sent_to<proto::Detach>("B").empty());
  CHECK(w.host.stopped.empty());
  REQUIRE(w.sent_to<proto::Attach>("B").size() == 1);
  w.attached_on_b({"checked", "target-ready", "released", "exported", "attached", "end"});
  CHECK(w.last_audit()[3].empty());
}

// ---------------------------------------------------------------- provision

TEST_CASE("an unknown target is provisioned, and the switch waits for it to register", "[switch]") {
  World w;
  w.add_user("alice");
  REQUIRE_OK(w.switch_alice("new-1"));
  CHECK(w.provisioned == std::vector<std::string>{"new-1"});
  CHECK(w.phase() == "provision");
  CHECK_FALSE(w.intent().has_value());  // nothing is persisted before the target is up
  w.tick_after(29s);
  CHECK(w.sent.empty());
  CHECK(w.phase() == "provision");

  w.connect("new-1");
  REQUIRE(w.sent_to<proto::Attach>("new-1").size() == 1);
  w.attach_done("new-1", 0);
  w.require_ended();
  w.require_attached("new-1", 2);
  CHECK(w.audited_steps() ==
        std::vector<std::string>{"checked", "target-ready", "released", "exported", "attached", "end"});
}

TEST_CASE("a provisioner that cannot start refuses the switch", "[switch]") {
  World w;
  w.add_user("alice");
  w.provision_result = Status::not_found("no provisioner is configured");
  Status st = w.switch_alice("new-1");
  CHECK(st.err() == ENOENT);
  CHECK_FALSE(w.switcher->running_for("alice"));
  CHECK(w.replies.empty());
}

TEST_CASE("a target that never registers ends the switch with ETIMEDOUT and nothing changed", "[switch]") {
  World w;
  w.alice_on_a();
  w.add_desktop("E", false);
  REQUIRE_OK(w.switch_alice("E"));
  w.deadline_passes(kTimeouts.provision_ms);
  w.ended_with(ETIMEDOUT, "did not come up within 30 s");
  CHECK(w.sent.empty());
  CHECK(w.host.stopped.empty());
  CHECK(w.attachment()->desktop == "A");
  CHECK(w.epoch() == 1);
}

// ---------------------------------------------------------------- detach

TEST_CASE("a refused detach without force ends the switch with nothing changed", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B", false));
  REQUIRE(w.sent_to<proto::Detach>("A").size() == 1);
  CHECK_FALSE(w.sent_to<proto::Detach>("A")[0].force);
  w.detach_done("A", EBUSY, "1 process(es) hold files under /home/alice: 77 (vim)");
  w.ended_with(EBUSY, "desktop A refused to detach: 1 process(es) hold files under /home/alice: 77 (vim)");
  CHECK(w.host.stopped.empty());
  CHECK(w.host.started.empty());
  auto att = w.attachment();
  REQUIRE(att);
  CHECK(att->desktop == "A");
  CHECK(att->roamfs_pid == kSourcePid);
  CHECK(att->mount_point == "/exports/A/alice@1");
  CHECK(w.epoch() == 1);
  CHECK(w.sent_to<proto::Attach>("B").empty());
}

TEST_CASE("a failed detach fences the source and the switch goes on", "[switch]") {
  World w;
  w.alice_on_a();
  SECTION("an error") {
    REQUIRE_OK(w.switch_alice("B"));
    w.detach_done("A", EIO, "cannot unmount");
  }
  SECTION("EBUSY with force: processes survived SIGKILL") {
    REQUIRE_OK(w.switch_alice("B"));
    w.detach_done("A", EBUSY, "processes under /home/alice survived SIGKILL");
  }
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].fence);
  REQUIRE(w.sent_to<proto::Attach>("B").size() == 1);
  w.attached_on_b({"checked", "target-ready", "detach-failed", "fenced", "exported", "attached", "end"});
}

TEST_CASE("a source that does not answer within the detach timeout is fenced", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  w.tick_after(std::chrono::milliseconds(kTimeouts.detach_ms - 1));
  CHECK(w.host.stopped.empty());
  CHECK(w.sent_to<proto::Detach>("A").size() == 1);  // sent once, not again each tick
  w.tick_after(2ms);
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].fence);
  CHECK(w.phase() == "attach");
  w.detach_done("A", 0);  // too late: ignored
  CHECK(w.host.stopped.size() == 1);
  w.attached_on_b({"checked", "target-ready", "detach-timeout", "fenced", "exported", "attached", "end"});
}

TEST_CASE("a dead source is fenced at once, without a detach", "[switch]") {
  World w;
  w.add_user("alice");
  w.add_desktop("A", false);
  w.add_desktop("B");
  w.attach("alice", "A");
  REQUIRE_OK(w.switch_alice("B"));
  CHECK(w.sent_to<proto::Detach>("A").empty());
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].fence);
  CHECK(w.host.stopped[0].pid == kSourcePid);
  w.attached_on_b({"checked", "target-ready", "source-dead", "fenced", "exported", "attached", "end"});
}

TEST_CASE("answers from the wrong desktop or to another request are ignored", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  const uint64_t id = w.switch_id();
  w.switcher->on_detach_done("B", proto::DetachDone{id, 0, ""});
  w.switcher->on_detach_done("A", proto::DetachDone{id + 1, 0, ""});
  w.switcher->on_attach_done("A", proto::AttachDone{id, 0, ""});
  CHECK(w.phase() == "detach");
  CHECK(w.host.stopped.empty());
  w.detach_done("A", 0);
  w.switcher->on_attach_done("A", proto::AttachDone{id, 0, ""});
  w.switcher->on_attach_done("B", proto::AttachDone{id - 1, 0, ""});
  CHECK(w.phase() == "attach");
  CHECK(w.attachment()->desktop.empty());
}

TEST_CASE("a command that could not be sent is sent again at the next tick", "[switch]") {
  World w;
  w.alice_on_a();
  w.failing_sends = 1;
  REQUIRE_OK(w.switch_alice("B"));
  CHECK(w.sent_to<proto::Detach>("A").empty());
  w.tick_after(500ms);
  CHECK(w.sent_to<proto::Detach>("A").size() == 1);
  w.tick_after(500ms);
  CHECK(w.sent_to<proto::Detach>("A").size() == 1);
}

// ---------------------------------------------------------------- export, attach

TEST_CASE("a roamfs that does not start ends the switch with its error", "[switch]") {
  World w;
  w.alice_on_a();
  w.host.start_result = Status::io("roamfs exited before mounting");
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  w.ended_with(EIO, "roamfs exited before mounting");
  CHECK(w.epoch() == 2);  // recorded before the start, so never handed out again
  w.require_rolled_back(0);
  CHECK(w.sent_to<proto::Attach>("B").empty());
}

TEST_CASE("the new epoch and its mount point are recorded before its roamfs starts", "[switch]") {
  World w;
  w.alice_on_a();
  bool checked = false;
  w.host.before_call = [&](const std::string& call) {
    if (call != "start") return;
    CHECK(w.epoch() == 2);
    CHECK(w.attachment()->mount_point == "/exports/B/alice@2");
    CHECK(w.attachment()->desktop.empty());
    checked = true;
  };
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  CHECK(checked);
  w.attached_on_b(kCleanSteps);
}

TEST_CASE("a failed attach is rolled back: the new epoch fenced, the disk attached nowhere, the reason audited",
          "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  w.attach_done("B", EIO, "B is not the user disk");
  w.ended_with(EIO, "desktop B could not attach: B is not the user disk");
  w.require_rolled_back(w.host.next_pid - 1);
  CHECK(w.attachment()->epoch == 2);
}

TEST_CASE("an AttachDone code outside errno's range is a failure, not a success", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  w.attach_done("B", uint64_t{1} << 32, "a code that an int cast makes 0");
  w.ended_with(EIO, "desktop B could not attach");
  w.require_rolled_back(w.host.next_pid - 1);
}

TEST_CASE("a target that does not attach in time ends the switch with ETIMEDOUT", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  w.deadline_passes(kTimeouts.attach_ms);
  w.ended_with(ETIMEDOUT, "did not attach the disk within 10 s");
  w.require_rolled_back(w.host.next_pid - 1);
}

// ---------------------------------------------------------------- broker restarts

TEST_CASE("a broker restart while waiting for the target: nothing was persisted", "[switch]") {
  World w;
  w.alice_on_a();
  w.add_desktop("E", false);
  REQUIRE_OK(w.switch_alice("E"));
  w.restart();
  CHECK_FALSE(w.switcher->running_for("alice"));
  CHECK_FALSE(w.intent().has_value());
  CHECK(w.attachment()->desktop == "A");
  w.connect("E");
  w.connect("A");
  CHECK(w.sent.empty());
}

TEST_CASE("a broker restart during the detach asks the source again once it reconnects", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  const uint64_t id = w.switch_id();
  w.clock.advance(3ms);
  w.restart();
  CHECK(w.phase() == "detach");
  CHECK(w.switch_id() == id);

  SECTION("the source comes back and detaches cleanly") {
    w.tick_after(std::chrono::milliseconds(kTimeouts.detach_ms - 1));
    CHECK(w.host.stopped.empty());  // a resumed source gets until the deadline to come back
    w.connect("B");
    w.connect("A");
    auto detach = w.sent_to<proto::Detach>("A");
    REQUIRE(detach.size() == 2);  // before and after the restart
    CHECK(detach[1].request_id == id);
    w.detach_done("A", 0);
    REQUIRE(w.host.stopped.size() == 1);
    CHECK_FALSE(w.host.stopped[0].fence);
    w.attached_on_b(kCleanSteps);
    CHECK(w.replies.empty());  // the requester of the previous run is gone
    CHECK(w.last_audit()[6] == "ok");
  }
  SECTION("the source never comes back: fenced at the deadline") {
    w.connect("B");
    w.tick_after(std::chrono::milliseconds(kTimeouts.detach_ms + 1));
    REQUIRE(w.host.stopped.size() == 1);
    CHECK(w.host.stopped[0].fence);
    w.attached_on_b({"checked", "target-ready", "detach-timeout", "fenced", "exported", "attached", "end"});
  }
}

TEST_CASE("a broker restart during the release ends the old epoch (fenced) and goes on", "[switch]") {
  World w;
  w.alice_on_a();
  w.killed_at_host_call("stop");
  // The release is redone: the detach's outcome died with the previous run,
  // so the old epoch is fenced rather than waited for.
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].pid == kSourcePid);
  CHECK(w.host.stopped[0].mount_point == "/exports/A/alice@1");
  CHECK(w.host.stopped[0].fence);
  REQUIRE(w.host.started.size() == 1);
  CHECK(w.phase() == "attach");
  CHECK(w.sent.empty());  // B has not registered with the new broker yet
  w.connect("B");
  REQUIRE(w.sent_to<proto::Attach>("B").size() == 1);
  w.attached_on_b({"checked", "target-ready", "detached", "fenced", "exported", "attached", "end"});
}

TEST_CASE("a broker killed as roamfs starts: the resumed export fences that epoch and starts a new one once",
          "[switch]") {
  World w;
  w.alice_on_a();
  w.killed_at_host_call("start");
  // The killed broker may have started a roamfs for epoch 2 whose pid it
  // never recorded: it is found by its mount point and fenced.
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].pid == 0);
  CHECK(w.host.stopped[0].mount_point == "/exports/B/alice@2");
  CHECK(w.host.stopped[0].fence);
  REQUIRE(w.host.started.size() == 1);
  CHECK(w.host.started[0].mount_point == "/exports/B/alice@3");
  CHECK(w.epoch() == 3);
  w.connect("B");
  w.attach_done("B", 0);
  w.require_ended();
  w.require_attached("B", 3);
  CHECK(w.audited_steps() == kCleanSteps);
}

TEST_CASE("a broker restart during the attach asks the target again once it reconnects", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  REQUIRE(w.sent_to<proto::Attach>("B").size() == 1);
  w.restart();
  CHECK(w.phase() == "attach");
  CHECK(w.sent_to<proto::Attach>("B").size() == 1);

  SECTION("the target comes back and attaches") {
    w.connect("B");
    auto attach = w.sent_to<proto::Attach>("B");
    REQUIRE(attach.size() == 2);
    CHECK(attach[1].export_path == "/exports/B/alice@2");
    w.attached_on_b(kCleanSteps);
    CHECK(w.host.started.size() == 1);  // no second epoch
  }
  SECTION("the target never comes back: ETIMEDOUT, rolled back") {
    w.tick_after(std::chrono::milliseconds(kTimeouts.attach_ms + 1));
    w.require_ended();
    CHECK_THAT(w.last_audit()[6], Catch::Contains("did not attach"));
    w.require_rolled_back(w.host.next_pid - 1);
    CHECK(w.attachment()->epoch == 2);
  }
}

TEST_CASE("an intent with an unknown phase is a corrupt registry", "[switch]") {
  World w;
  w.alice_on_a();
  REQUIRE_OK(w.registry.put(Table::kIntents, "alice",
                            to_row(IntentRecord{9, "A", "B", "request", "teleport", 0, "", true})));
  Switcher fresh(SwitchEnv{w.registry, w.peers, w.host, w.clock, kTimeouts, {}, nullptr, nullptr, nullptr});
  Status st = fresh.resume();
  CHECK(st.err() == EIO);
  CHECK_THAT(st.message(), Catch::Contains("teleport"));
}

// ---------------------------------------------------------------- remote desktops

namespace {

// alice on A (bind), B registered with the remote driver.
void alice_on_a_b_remote(World& w) {
  w.add_user("alice");
  w.add_desktop("A");
  w.add_remote_desktop("B");
  w.attach("alice", "A");
}

uint16_t remote_port(World& w, const std::string& user) {
  auto disk = must(find_disk(w.registry, user));
  REQUIRE(disk);
  return disk->remote_port;
}

}  // namespace

TEST_CASE("a remote target: its roamfs listens on the disk's port for its agent's key only", "[switch][remote]") {
  World w;
  alice_on_a_b_remote(w);
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  REQUIRE(w.host.started.size() == 1);
  const Started& s = w.host.started[0];
  CHECK(s.mount_point == "/remote/alice@2");  // host-private: in no desktop's export dir
  REQUIRE(s.remote);
  CHECK(s.remote->port == 7000);
  CHECK(s.remote->allow_key == "agent-key-B");
  CHECK(s.remote->epoch == 2);
  const std::string where = "tcp://:7000#" + FakeDiskHost::key_of("alice");
  auto attach = w.sent_to<proto::Attach>("B");
  REQUIRE(attach.size() == 1);
  CHECK(attach[0].export_path == where);
  w.attach_done("B", 0);
  w.require_ended();
  auto att = w.attachment();
  REQUIRE(att);
  CHECK(att->desktop == "B");
  CHECK(att->mount_point == "/remote/alice@2");
  CHECK(att->remote_export == where);
  CHECK(remote_port(w, "alice") == 7000);

  // Back to a bind desktop: B detaches, its epoch ends gracefully, A gets a path.
  REQUIRE_OK(w.switch_alice("A"));
  w.detach_done("B", 0);
  REQUIRE(w.host.stopped.size() == 2);
  CHECK(w.host.stopped[1].mount_point == "/remote/alice@2");
  CHECK_FALSE(w.host.stopped[1].fence);
  REQUIRE(w.host.started.size() == 2);
  CHECK_FALSE(w.host.started[1].remote);
  CHECK(w.sent_to<proto::Attach>("A").at(0).export_path == "/exports/A/alice@3");
  w.attach_done("A", 0);
  CHECK(w.attachment()->remote_export.empty());
  CHECK(remote_port(w, "alice") == 7000);  // kept for the next remote desktop
}

TEST_CASE("a remote source that does not detach is fenced: its roamfs ends before the next starts",
          "[switch][remote]") {
  World w;
  w.add_user("alice");
  w.add_remote_desktop("A");
  w.add_remote_desktop("B");
  REQUIRE_OK(w.registry.put(Table::kAttachments, "alice",
                            to_row(AttachmentRecord{"A", 1, "/remote/alice@1", kSourcePid, "tcp://:7000#k"})));
  REQUIRE_OK(w.switch_alice("B"));
  w.deadline_passes(kTimeouts.detach_ms);
  REQUIRE(w.host.stopped.size() == 1);
  CHECK(w.host.stopped[0].pid == kSourcePid);
  CHECK(w.host.stopped[0].mount_point == "/remote/alice@1");
  CHECK(w.host.stopped[0].fence);
  REQUIRE(w.host.started.size() == 1);
  REQUIRE(w.host.started[0].remote);
  CHECK(w.host.started[0].remote->allow_key == "agent-key-B");  // A's key is no longer allowed
  CHECK(w.host.started[0].remote->epoch == 2);
}

TEST_CASE("a disk's port is its own: kept across epochs, never another disk's, ENOSPC when none is left",
          "[switch][remote]") {
  World w;
  alice_on_a_b_remote(w);
  w.add_user("bob");
  REQUIRE_OK(w.registry.put(Table::kDisks, "bob", to_row(DiskRecord{"/stores/bob", 1, 7000})));
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  w.attach_done("B", 0);
  CHECK(remote_port(w, "alice") == 7001);
  CHECK(w.attachment()->remote_export == "tcp://:7001#" + FakeDiskHost::key_of("alice"));

  // A recovery to the same desktop: a new epoch on the same port.
  REQUIRE_OK(w.switcher->start({"alice", "B", "recovery", true, std::nullopt}));
  w.detach_done("B", 0);
  REQUIRE(w.host.started.size() == 2);
  CHECK(w.host.started[1].remote->port == 7001);
  CHECK(w.host.started[1].remote->epoch == 3);

  auto disks = std::vector<std::pair<std::string, DiskRecord>>{
      {"bob", {"/b", 1, 7000}}, {"carol", {"/c", 1, 7001}}, {"dora", {"/d", 1, 7002}}};
  CHECK(must(choose_remote_port(w.remote, "dora", 7002, disks)) == 7002);
  CHECK(must(choose_remote_port(w.remote, "erin", 0, {disks[0], disks[2]})) == 7001);
  CHECK(must(choose_remote_port(w.remote, "bob", 9000, {disks[1]})) == 7000);  // outside the range now
  auto full = choose_remote_port(w.remote, "erin", 0, disks);
  CHECK(full.status().err() == ENOSPC);
  CHECK(choose_remote_port(RemoteConfig{}, "erin", 0, {}).status().err() == EINVAL);
}

TEST_CASE("a configured remote-address goes in the export; without remote-ports a remote target is refused",
          "[switch][remote]") {
  World w;
  alice_on_a_b_remote(w);
  w.remote = RemoteConfig{};
  w.restart();
  w.connect("B");
  auto refused = w.switch_alice("B");
  CHECK(refused.err() == EINVAL);
  CHECK_THAT(refused.message(), Catch::Contains("remote-ports"));
  CHECK_FALSE(w.intent());

  w.remote = RemoteConfig{7000, 7000, "10.0.0.5"};
  w.restart();
  w.connect("A");
  w.connect("B");
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  CHECK(w.sent_to<proto::Attach>("B").at(0).export_path == "tcp://10.0.0.5:7000#" + FakeDiskHost::key_of("alice"));
}

TEST_CASE("a broker restart during a remote attach sends the same remote export again", "[switch][remote]") {
  World w;
  alice_on_a_b_remote(w);
  REQUIRE_OK(w.switch_alice("B"));
  w.detach_done("A", 0);
  const std::string where = w.sent_to<proto::Attach>("B").at(0).export_path;
  w.restart();
  w.sent.clear();
  w.connect("B");
  auto again = w.sent_to<proto::Attach>("B");
  REQUIRE(again.size() == 1);
  CHECK(again[0].export_path == where);
  w.attach_done("B", 0);
  CHECK(w.attachment()->desktop == "B");
}

TEST_CASE("remote-ports is LOW-HIGH within 1..65535", "[switch][remote]") {
  RemoteConfig c;
  REQUIRE_OK(parse_port_range("7000-7099", c));
  CHECK(c.first_port == 7000);
  CHECK(c.last_port == 7099);
  REQUIRE_OK(parse_port_range("", c));
  CHECK(c.first_port == 0);
  for (const char* bad : {"7000", "7099-7000", "0-10", "1-65536", "a-b", "-5", "5-", " 1-2", "1-2 "}) {
    INFO(bad);
    CHECK(parse_port_range(bad, c).err() == EINVAL);
    CHECK(c.first_port == 0);
  }
}
