// roamfs's side of the control socket (protocol.h): a thread that accepts
// connections on the store's control socket, checks who is calling, decodes
// the request once and hands it to the handler, then sends the reply.
//
// Requests are served one at a time, in the order they arrive; a client that
// stalls mid-request is dropped after a timeout so it cannot block others.
// Threading: the handler runs on the server's thread, never concurrently with
// itself. Lifetime: the destructor stops the thread and closes the socket.
#pragma once

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "fusefs/control/protocol.h"

namespace roam::control {

// What a handler returns: the reply, and what to do once it has been sent
// (or could not be), on the server's thread; `after_reply` may be empty.
struct Handled {
  Reply reply;
  std::function<void()> after_reply;
};
using Handler = std::function<Handled(const Request&, const ucred& caller)>;

class Server {
 public:
  // Binds the socket in `dir` now (listen_on, protocol.h: so a start-up
  // error reaches the caller) and starts the thread.
  static Result<std::unique_ptr<Server>> start(const std::string& dir, Handler handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

 private:
  Server(int listen_fd, int stop_fd, Handler handler);
  void run();
  void serve(int conn);

  int listen_fd_;
  int stop_fd_;  // an eventfd: readable once the destructor asks the thread to stop
  Handler handler_;
  std::thread thread_;
};

}  // namespace roam::control
