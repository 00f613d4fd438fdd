#include "coordinator/background_sync.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace crucible::coordinator {

BackgroundSync::BackgroundSync(storage::Store& store, zmq::context_t& ctx,
                               std::chrono::milliseconds idle_flush)
    : store_(store),
      ctx_(ctx),
      idle_flush_(idle_flush),
      endpoint_(fmt::format("inproc://crucible-sync-{}", static_cast<const void*>(this))),
      wake_(ctx, zmq::socket_type::pair) {
  wake_.set(zmq::sockopt::linger, 0);
  wake_.bind(endpoint_);
  thread_ = std::thread([this] { Loop(); });
}

BackgroundSync::~BackgroundSync() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

bool BackgroundSync::Request() {
  if (busy_) return false;
  busy_ = true;
  {
    std::lock_guard lock(mu_);
    requested_ = true;
  }
  cv_.notify_all();
  return true;
}

std::optional<Status> BackgroundSync::TakeResult() {
  zmq::message_t note;
  while (wake_.recv(note, zmq::recv_flags::dontwait)) {
  }
  std::lock_guard lock(mu_);
  if (!result_) return std::nullopt;
  std::optional<Status> out = std::move(result_);
  result_.reset();
  busy_ = false;
  return out;
}

void BackgroundSync::Loop() {
  zmq::socket_t notify(ctx_, zmq::socket_type::pair);
  notify.set(zmq::sockopt::linger, 0);
  notify.connect(endpoint_);
  for (;;) {
    bool requested = false;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, idle_flush_, [&] { return stop_ || requested_; });
      if (stop_) break;
      requested = requested_;
      requested_ = false;
    }
    Status st = store_.Sync();
    if (!requested) {
      if (!st) spdlog::error("cannot write the database's log: {}", st.error().ToString());
      continue;
    }
    {
      std::lock_guard lock(mu_);
      result_ = std::move(st);
    }
    (void)notify.send(zmq::str_buffer("s"), zmq::send_flags::dontwait);
  }
}

}  // namespace crucible::coordinator
