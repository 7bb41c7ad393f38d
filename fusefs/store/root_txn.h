// The root transaction: LMDB's one write transaction, which holds every
// change made since the last checkpoint (store.h) until the next.
//
// Why a thread of its own: LMDB's writer lock is a mutex owned by the thread
// that begins a write transaction, and only that thread may release it (at
// commit or abort; a robust mutex refuses any other). The root transaction
// lives across many FUSE requests served by many threads, so begin(),
// commit() and abort() run on this object's thread, and callers wait for
// them. Between those calls any thread may use txn(), one at a time: the
// store's mutex (Store::mu_) serialises them and orders their memory.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "base/lmdb.h"
#include "base/status.h"

namespace roam {

class RootTxn {
 public:
  explicit RootTxn(const lmdb::Env& env);
  // Aborts an open transaction, then stops the thread.
  ~RootTxn();
  RootTxn(const RootTxn&) = delete;
  RootTxn& operator=(const RootTxn&) = delete;

  // Begins the write transaction (blocks while another process writes).
  Status begin();
  // Commits it. Durable when this returns, as the environment's flags say
  // (the store opens LMDB with synced commits). The transaction is closed
  // either way; a failed commit discarded its changes.
  Status commit();
  // Discards every change since begin().
  void abort();

  bool open() const { return txn_.active(); }
  lmdb::Txn& txn() { return txn_; }

 private:
  // Runs `job` on the thread and waits for it.
  Status run(std::function<Status()> job);
  void loop();

  const lmdb::Env& env_;
  lmdb::Txn txn_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<Status()> job_;  // the job waiting to run, if any
  Status result_;
  bool done_ = false;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses
};

}  // namespace roam
