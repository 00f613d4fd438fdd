// Group commit off the coordinator's loop thread.
//
// The coordinator acknowledges a result or a trace batch only once the writes
// behind it are durable, and an fsync costs milliseconds on an ordinary disk.
// Waiting for it on the loop thread stalled everything else the loop does
// meanwhile: with one runner of eight slots the farm could not pass about one
// fsync per eight attempts. BackgroundSync runs Store::Sync() on a thread of
// its own: the loop hands it the acknowledgements gathered in an iteration
// (Request), goes on handling messages and handing out leases, and sends them
// when the thread reports the sync done through an inproc PAIR socket the loop
// polls beside its ROUTER. One sync is under way at a time; acknowledgements
// gathered meanwhile wait for the next. Between requests the thread also
// flushes the log every `idle_flush` (writes nobody waits for, such as
// leases, reach the file and the disk soon).
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "base/error.h"
#include "storage/store.h"

namespace crucible::coordinator {

class BackgroundSync {
 public:
  BackgroundSync(storage::Store& store, zmq::context_t& ctx, std::chrono::milliseconds idle_flush);
  ~BackgroundSync();  // finishes the sync under way
  BackgroundSync(const BackgroundSync&) = delete;
  BackgroundSync& operator=(const BackgroundSync&) = delete;

  // Readable when a requested sync is done (then call TakeResult). Polled by
  // the loop thread only.
  zmq::socket_t& wake_socket() { return wake_; }

  // Starts a sync of every write made before this call. False (and nothing
  // started) while one is under way.
  bool Request();
  bool busy() const { return busy_; }

  // The result of the requested sync once wake_socket() is readable, nullopt
  // before; drains the socket. Loop thread only.
  std::optional<Status> TakeResult();

 private:
  void Loop();

  storage::Store& store_;
  zmq::context_t& ctx_;
  const std::chrono::milliseconds idle_flush_;
  const std::string endpoint_;
  zmq::socket_t wake_;
  bool busy_ = false;  // loop thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;
  bool stop_ = false;
  std::optional<Status> result_;
  std::thread thread_;
};

}  // namespace crucible::coordinator
