// The broker's registry (LMDB) and its records: atomic changes, ordered
// audit, typed records that refuse damaged rows, and liveness counting; who
// may do what (policy.h).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include "broker/disk_server.h"
#include "broker/peers.h"
#include "broker/policy.h"
#include "broker/records.h"
#include "broker/registry.h"
#include "broker/switch.h"
#include "tests/unit/helpers.h"

using namespace roam;
using namespace roam::broker;
using roam::testing::TempDir;

TEST_CASE("the registry stores, lists and deletes rows per table") {
  TempDir dir;
  auto reg = Registry::open(dir.sub("registry"));
  REQUIRE(reg.is_ok());
  REQUIRE(reg->put(Table::kUsers, "bob", {"1"}).is_ok());
  REQUIRE(reg->put(Table::kUsers, "alice", {"2"}).is_ok());
  REQUIRE(reg->put(Table::kDesktops, "alice", {"ok", ""}).is_ok());  // another table, same key
  auto users = reg->list(Table::kUsers);
  REQUIRE(users.is_ok());
  REQUIRE(users->size() == 2);
  CHECK(users->at(0).first == "alice");  // sorted by key
  CHECK(users->at(1).second == Row{"1"});
  REQUIRE(reg->del(Table::kUsers, "bob").is_ok());
  auto bob = reg->get(Table::kUsers, "bob");
  REQUIRE(bob.is_ok());
  CHECK_FALSE(bob->has_value());
  auto desk = reg->get(Table::kDesktops, "alice");
  REQUIRE(desk.is_ok());
  CHECK(desk->has_value());
}

TEST_CASE("apply() changes several tables in one transaction and survives a reopen") {
  TempDir dir;
  {
    auto reg = Registry::open(dir.sub("registry"));
    REQUIRE(reg.is_ok());
    AttachmentRecord att{"A", 3, "/run/roamdisk/exports/A/alice@3", 1234};
    IntentRecord intent{7, "A", "B", "request", "attach", 99, "checked=0", false};
    REQUIRE(reg->apply({{Table::kDisks, "alice", to_row(DiskRecord{"/s/alice", 3})},
                        {Table::kAttachments, "alice", to_row(att)},
                        {Table::kIntents, "alice", to_row(intent)}})
                .is_ok());
  }
  auto reg = Registry::open(dir.sub("registry"));
  REQUIRE(reg.is_ok());
  auto disk = find_disk(*reg, "alice");
  REQUIRE(disk.is_ok());
  REQUIRE(disk->has_value());
  CHECK((*disk)->epoch == 3);
  auto att = find_attachment(*reg, "alice");
  REQUIRE(att.is_ok());
  REQUIRE(att->has_value());
  CHECK((*att)->roamfs_pid == 1234);
  CHECK((*att)->mount_point == "/run/roamdisk/exports/A/alice@3");
  auto on_a = user_on_desktop(*reg, "A");
  REQUIRE(on_a.is_ok());
  CHECK(*on_a == std::optional<std::string>("alice"));
  auto row = reg->get(Table::kIntents, "alice");
  REQUIRE(row.is_ok());
  auto intent = intent_from_row("alice", **row);
  REQUIRE(intent.is_ok());
  CHECK(intent->switch_id == 7);
  CHECK(intent->phase == "attach");
  CHECK_FALSE(intent->force);
}

TEST_CASE("audit records keep their order past nine, ninety-nine, ...") {
  TempDir dir;
  auto reg = Registry::open(dir.sub("registry"));
  REQUIRE(reg.is_ok());
  for (int i = 1; i <= 120; ++i) REQUIRE(reg->append_audit({std::to_string(i)}).is_ok());
  auto audit = reg->list(Table::kAudit);
  REQUIRE(audit.is_ok());
  REQUIRE(audit->size() == 120);
  for (size_t i = 0; i < audit->size(); ++i) CHECK(audit->at(i).second == Row{std::to_string(i + 1)});
}

TEST_CASE("an audit record holding any byte reads back with the cells it was written with") {
  TempDir dir;
  auto reg = Registry::open(dir.sub("registry"));
  REQUIRE(reg.is_ok());
  // An agent's message naming a busy process whose name holds the separator.
  const Row row{"1", "2", "alice", "A", "B", "request", "busy: evil\x1f" "comm" + std::string(1, '\0'), "end=1"};
  REQUIRE(reg->append_audit(row).is_ok());
  auto audit = reg->list(Table::kAudit);
  REQUIRE(audit.is_ok());
  REQUIRE(audit->size() == 1);
  CHECK(audit->at(0).second == row);
}

TEST_CASE("the oldest audit records go once there are more than the registry keeps") {
  TempDir dir;
  auto reg = Registry::open(dir.sub("registry"), 5);
  REQUIRE(reg.is_ok());
  for (int i = 1; i <= 12; ++i) REQUIRE(reg->append_audit({std::to_string(i)}).is_ok());
  auto audit = reg->list(Table::kAudit);
  REQUIRE(audit.is_ok());
  REQUIRE(audit->size() == 5);
  for (size_t i = 0; i < audit->size(); ++i) CHECK(audit->at(i).second == Row{std::to_string(i + 8)});
  CHECK(audit->back().first == "00000000000000000012");
}

TEST_CASE("a damaged row is a corrupt-registry error, not an empty record") {
  CHECK(disk_from_row("alice", {"/s"}).status().err() == EIO);
  CHECK(disk_from_row("alice", {"/s", "x"}).status().err() == EIO);
  CHECK(attachment_from_row("alice", {"A", "1", "/m", "-"}).status().err() == EIO);
  CHECK(intent_from_row("alice", {"1"}).status().err() == EIO);
  CHECK_THAT(desktop_from_row("A", {}).status().message(), Catch::Contains("desktop record 'A'"));
}

TEST_CASE("rows of an older broker read with the defaults of the cells added since") {
  auto disk = disk_from_row("alice", {"/s", "4"});
  REQUIRE(disk.is_ok());
  CHECK(disk->remote_port == 0);
  auto desktop = desktop_from_row("A", {"ok", "abc"});
  REQUIRE(desktop.is_ok());
  CHECK(desktop->driver == "bind");
  CHECK(desktop->registered_key.empty());
  auto att = attachment_from_row("alice", {"A", "3", "/m", "77"});
  REQUIRE(att.is_ok());
  CHECK(att->remote_export.empty());
}

TEST_CASE("the remote cells round-trip, and a bad one is a corrupt registry") {
  auto disk = disk_from_row("alice", to_row(DiskRecord{"/s", 4, 7001}));
  REQUIRE(disk.is_ok());
  CHECK(disk->remote_port == 7001);
  auto desktop = desktop_from_row("R", to_row(DesktopRecord{"ok", "", "remote", "ab12"}));
  REQUIRE(desktop.is_ok());
  CHECK(desktop->driver == "remote");
  CHECK(desktop->registered_key == "ab12");
  auto att = attachment_from_row("alice", to_row(AttachmentRecord{"R", 3, "/m", 77, "tcp://:7001#ab"}));
  REQUIRE(att.is_ok());
  CHECK(att->remote_export == "tcp://:7001#ab");
  CHECK(disk_from_row("alice", {"/s", "4", "70000"}).status().err() == EIO);
  CHECK(disk_from_row("alice", {"/s", "4", "1", "x"}).status().err() == EIO);
  CHECK(desktop_from_row("R", {"ok", "", "nfs", ""}).status().err() == EIO);
  CHECK(desktop_from_row("R", {"ok", "", "remote"}).status().err() == EIO);
  CHECK(attachment_from_row("alice", {"A", "3", "/m", "77", "x", "y"}).status().err() == EIO);
}

TEST_CASE("a disk's remote key pair is made once, mode 0600, and is the same from then on") {
  TempDir dir;
  DiskServerConfig cfg;
  cfg.keys_dir = dir.path();
  auto first = remote_key_of(cfg, "alice");
  REQUIRE(first.is_ok());
  CHECK(first->size() == 64);
  struct stat st {};
  REQUIRE(::stat(dir.sub("alice.remote.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto again = remote_key_of(cfg, "alice");
  REQUIRE(again.is_ok());
  CHECK(*again == *first);
  auto bobs = remote_key_of(cfg, "bob");
  REQUIRE(bobs.is_ok());
  CHECK(*bobs != *first);
  cfg.keys_dir = dir.sub("missing");
  CHECK_FALSE(remote_key_of(cfg, "alice").is_ok());
}

TEST_CASE("switch phases have stable names (they are persisted)") {
  for (auto p : {SwitchPhase::kProvision, SwitchPhase::kDetach, SwitchPhase::kRelease, SwitchPhase::kExport,
                 SwitchPhase::kAttach})
    CHECK(phase_from_name(phase_name(p)) == p);
  CHECK_FALSE(phase_from_name("done").has_value());
}

TEST_CASE("a peer dies after `liveness` silent intervals and lives again when heard") {
  Peers peers(3);
  peers.seen("A", "rid-a");
  CHECK(peers.alive("A"));
  CHECK(peers.tick().empty());
  CHECK(peers.tick().empty());
  peers.seen("A", "rid-a2");  // any message resets the counter
  CHECK(peers.tick().empty());
  CHECK(peers.tick().empty());
  CHECK(peers.tick() == std::vector<std::string>{"A"});
  CHECK_FALSE(peers.alive("A"));
  CHECK_FALSE(peers.routing_id("A").has_value());
  CHECK(peers.tick().empty());  // reported once
  peers.seen("A", "rid-a3");
  CHECK(peers.routing_id("A") == std::optional<std::string>("rid-a3"));
  CHECK(peers.desktop_of("rid-a3") == std::optional<std::string>("A"));
  CHECK_FALSE(peers.desktop_of("rid-a").has_value());
}

// ---------------------------------------------------------------- who may do what

namespace {

const std::string kKeyLower(64, 'a');
const std::string kKeyUpper(64, 'A');
const std::string kOtherKey = std::string(63, 'b') + "c";

}  // namespace

TEST_CASE("a key written in upper-case hex is the key the ZAP handler names in lower case") {
  auto principals = configured_principals({kKeyUpper}, {"A:" + std::string(32, 'B') + std::string(32, 'c')});
  REQUIRE(principals.is_ok());
  REQUIRE(principals->size() == 2);
  CHECK(principals->at(0).first == kKeyLower);
  CHECK(principals->at(0).second.role == Principal::Role::kOperator);
  CHECK(principals->at(1).first == std::string(32, 'b') + std::string(32, 'c'));
  CHECK(principals->at(1).second.desktop == "A");
}

TEST_CASE("one key listed as operator and as agent, or for two desktops, is a configuration error") {
  auto both = configured_principals({kKeyLower}, {"A:" + kKeyUpper});
  REQUIRE_FALSE(both.is_ok());
  CHECK(both.status().err() == EINVAL);
  CHECK_THAT(both.status().message(), Catch::Contains("listed as an operator key and as the agent key of desktop A"));
  auto twice = configured_principals({}, {"A:" + kOtherKey, "B:" + kOtherKey});
  REQUIRE_FALSE(twice.is_ok());
  CHECK_THAT(twice.status().message(), Catch::Contains("desktop A and as the agent key of desktop B"));
  CHECK_FALSE(configured_principals({"xyz"}, {}).is_ok());
  CHECK_FALSE(configured_principals({}, {kKeyLower}).is_ok());  // no DESKTOP:
}

TEST_CASE("an agent key may switch only its own user, and only to a desktop that exists") {
  TempDir dir;
  auto reg = Registry::open(dir.sub("registry"));
  REQUIRE(reg.is_ok());
  REQUIRE(reg->put(Table::kDesktops, "A", to_row(DesktopRecord{})).is_ok());
  REQUIRE(reg->put(Table::kDesktops, "B", to_row(DesktopRecord{})).is_ok());
  REQUIRE(reg->put(Table::kAttachments, "alice", to_row(AttachmentRecord{"A", 1, "/x/alice@1", 5})).is_ok());
  const Principal agent_a{Principal::Role::kAgent, "A"};
  CHECK(agent_may_request(*reg, agent_a, proto::SwitchRequest{1, "alice", "B", true}).is_ok());
  Status unknown = agent_may_request(*reg, agent_a, proto::SwitchRequest{1, "alice", "new-desktop-1", true});
  CHECK(unknown.err() == EPERM);
  CHECK_THAT(unknown.message(), Catch::Contains("only an operator key may have the broker provision one"));
  CHECK(agent_may_request(*reg, agent_a, proto::SwitchRequest{1, "bob", "B", true}).err() == EPERM);
  CHECK(agent_may_request(*reg, agent_a, proto::DesktopCreate{1, "C"}).err() == EPERM);
  CHECK(agent_may_request(*reg, Principal{Principal::Role::kAgent, "B"}, proto::SwitchRequest{1, "alice", "B", true})
            .err() == EPERM);
}
