// broker/history_requests.h and broker/rate_limit.h: what the broker makes
// of a request on a disk's history (proto::HistoryRequest) before it
// forwards it to roamfs, and the per-desktop token bucket.
#include <catch2/catch.hpp>

#include "broker/history_requests.h"
#include "broker/rate_limit.h"
#include "tests/unit/helpers.h"

using namespace roam;
using namespace roam::broker;
using roam::testing::must;

namespace {

constexpr int64_t kNow = 1796447845LL * 1000000000LL;

proto::HistoryRequest request(const std::string& command, const std::string& path) {
  proto::HistoryRequest r;
  r.request_id = 1;
  r.command = command;
  r.path = path;
  return r;
}

}  // namespace

TEST_CASE("an agent's request is made as its caller; an operator's is not narrowed", "[history-requests]") {
  auto r = request("restore", "/thesis.odt");
  r.at = "-5m";
  r.uid = 1000;
  r.gid = 1000;
  r.groups = "27,100";
  r.pid = 4321;
  r.comm = "roam";
  const Identity who = must(identity_of(r));
  CHECK(who == Identity{1000, 1000, {27, 100}, 4321, "roam"});
  const auto as_user = std::get<control::RestoreCall>(must(to_control_request(r, who, kNow)));
  CHECK(as_user.path == "/thesis.odt");
  CHECK(as_user.at_ns == kNow - 300LL * 1000000000LL);
  CHECK(as_user.as == who);
  const auto as_operator = std::get<control::RestoreCall>(must(to_control_request(r, std::nullopt, kNow)));
  CHECK_FALSE(as_operator.as.has_value());
}

TEST_CASE("malformed history requests are refused with a sentence", "[history-requests]") {
  auto restore = request("restore", "/f");
  CHECK(to_control_request(restore, std::nullopt, kNow).status().err() == EINVAL);  // no moment
  restore.at = "-1h";
  restore.before_op = 3;
  CHECK(to_control_request(restore, std::nullopt, kNow).status().err() == EINVAL);  // two moments
  restore.before_op = 0;
  restore.at = "yesterday-ish";
  CHECK(to_control_request(restore, std::nullopt, kNow).status().err() == EINVAL);
  CHECK(to_control_request(request("history", "relative"), std::nullopt, kNow).status().err() == EINVAL);
  CHECK(to_control_request(request("rm", "/f"), std::nullopt, kNow).status().err() == EINVAL);
  // undo-restore is a user's own: an operator's has no user to undo for.
  CHECK(to_control_request(request("undo-restore", ""), std::nullopt, kNow).status().err() == EINVAL);
  auto bad_groups = request("log", "");
  for (const char* groups : {"1,,2", "x", "1,", "-1"}) {
    bad_groups.groups = groups;
    CHECK(identity_of(bad_groups).status().err() == EINVAL);
  }
}

TEST_CASE("a log request gets the default limit and its filters", "[history-requests]") {
  auto r = request("log", "");
  r.since = "@1796440000";
  r.by = "ransom";
  const auto log = std::get<control::LogCall>(must(to_control_request(r, std::nullopt, kNow)));
  CHECK_FALSE(log.path.has_value());
  CHECK(log.since_ns == 1796440000LL * 1000000000LL);
  CHECK(log.by == std::optional<std::string>("ransom"));
  CHECK(log.limit == kDefaultLogLimit);
}

TEST_CASE("an undo request names one process, by name or by pid", "[history-requests]") {
  auto r = request("undo", "");
  CHECK(to_control_request(r, std::nullopt, kNow).status().err() == EINVAL);  // whose?
  r.by = "ransom";
  r.by_pid = 7;
  CHECK(to_control_request(r, std::nullopt, kNow).status().err() == EINVAL);  // two
  r.by_pid = 0;
  r.since = "-1h";
  r.dry_run = true;
  const auto by_name = std::get<control::UndoCall>(must(to_control_request(r, std::nullopt, kNow)));
  CHECK(by_name.comm == std::optional<std::string>("ransom"));
  CHECK_FALSE(by_name.pid.has_value());
  CHECK(by_name.since_ns == kNow - 3600LL * 1000000000LL);
  CHECK(by_name.dry_run);
  r.by.clear();
  r.by_pid = 4242;
  const auto by_pid = std::get<control::UndoCall>(must(to_control_request(r, std::nullopt, kNow)));
  CHECK(by_pid.pid == std::optional<uint32_t>(4242));
  r.by_pid = 1ull << 40;
  CHECK(to_control_request(r, std::nullopt, kNow).status().err() == EINVAL);
  CHECK(describe(request("undo", "")) == "undo");

  control::Reply reply;
  reply.moment = "undo of ransom";
  reply.seq = 120;
  reply.message = "/docs";
  reply.changes = {{RestoreChange::Kind::kBack, "/docs/a", ""},
                   {RestoreChange::Kind::kKept, "/docs/b", "kept as other processes left it"}};
  auto undo = request("undo", "");
  undo.by = "ransom";
  const Answer done = answer_for(undo, reply, true);
  REQUIRE(done.rows.size() == 3);
  CHECK(done.rows[2] == "= /docs/b  kept as other processes left it");
  CHECK(done.message == "undid the changes of ransom: 1 changes, logged as op 120 (undo it with: roam undo-restore)");
  undo.user = "alice";
  CHECK_THAT(answer_for(undo, reply, false).message,
             Catch::EndsWith("(undo it with: roamctl restore --user alice /docs --before-op 120)"));
  undo.dry_run = true;
  CHECK(answer_for(undo, reply, true).message == "dry run: undoing the changes of ransom would make 1 changes");
}

TEST_CASE("roamfs's reply becomes a table and a sentence", "[history-requests]") {
  control::Reply reply;
  reply.moment = "2026-12-04T23:00:00Z";
  reply.seq = 99;
  reply.changes = {{RestoreChange::Kind::kBack, "/notes/a", ""}};
  const Answer restored = answer_for(request("restore", "/notes"), reply, true);
  CHECK(restored.rows.size() == 2);
  CHECK(restored.rows[1] == "+ /notes/a");
  CHECK(restored.message == "restored /notes to 2026-12-04T23:00:00Z: 1 changes, logged as op 99 (undo it with: roam undo-restore)");
  auto by_operator = request("restore", "/notes");
  by_operator.user = "alice";
  CHECK_THAT(answer_for(by_operator, reply, false).message,
             Catch::EndsWith("(undo it with: roamctl restore --user alice /notes --before-op 99)"));
  control::Reply log;
  log.rows = {{"1", "t", "create", "/f", "sh[1] uid 1000"}};
  const Answer table = answer_for(request("log", ""), log, true);
  REQUIRE(table.rows.size() == 2);
  CHECK(proto::split_cells(table.rows[0]).size() == 5);
  CHECK(proto::split_cells(table.rows[1])[3] == "/f");
}

TEST_CASE("a desktop's bucket allows a burst, then one request per refill, each desktop on its own",
          "[history-requests]") {
  RateLimiter limiter(RateLimit{3, 0.5});
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.take("A", 0).has_value());
  const auto wait = limiter.take("A", 0);
  REQUIRE(wait.has_value());
  CHECK(*wait == 2);  // one token every 2 s
  CHECK_FALSE(limiter.take("B", 0).has_value());
  CHECK(limiter.take("A", 1000).has_value());
  CHECK_FALSE(limiter.take("A", 2000).has_value());
  CHECK(limiter.take("A", 2000).has_value());
  // Idle time fills the bucket up to its burst, no further.
  for (int i = 0; i < 3; ++i) CHECK_FALSE(limiter.take("A", 600000).has_value());
  CHECK(limiter.take("A", 600000).has_value());
}
