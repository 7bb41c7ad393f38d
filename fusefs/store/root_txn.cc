#include "fusefs/store/root_txn.h"

namespace roam {

RootTxn::RootTxn(const lmdb::Env& env) : env_(env), thread_([this] { loop(); }) {}

RootTxn::~RootTxn() {
  abort();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void RootTxn::loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || (job_ && !done_); });
    if (stop_) return;
    result_ = job_();
    done_ = true;
    cv_.notify_all();
  }
}

Status RootTxn::run(std::function<Status()> job) {
  std::unique_lock lock(mu_);
  job_ = std::move(job);
  done_ = false;
  cv_.notify_all();
  cv_.wait(lock, [this] { return done_; });
  job_ = nullptr;
  return std::exchange(result_, Status::ok());
}

Status RootTxn::begin() {
  return run([this]() -> Status {
    ROAM_ASSIGN(txn_, lmdb::Txn::begin(env_, false));
    return Status::ok();
  });
}

Status RootTxn::commit() {
  return run([this] { return txn_.commit(); });
}

void RootTxn::abort() {
  if (!txn_.active()) return;
  (void)run([this] {
    txn_.abort();
    return Status::ok();
  });
}

}  // namespace roam
