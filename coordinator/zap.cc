#include "coordinator/zap.h"

#include <chrono>
#include <filesystem>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <zmq_addon.hpp>

namespace crucible::coordinator {

namespace {

constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";

std::string Text(const zmq::message_t& m) { return std::string(m.to_string_view()); }

}  // namespace

Result<std::unique_ptr<ZapHandler>> ZapHandler::Start(
    zmq::context_t& context, const std::vector<protocol::AuthorizedKey>& keys) {
  zmq::socket_t socket(context, zmq::socket_type::rep);
  try {
    socket.set(zmq::sockopt::linger, 0);
    socket.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    return Fail(e.num() == EADDRINUSE ? Code::kAlreadyExists : Code::kInternal,
                fmt::format("cannot start the ZAP handler on {}: {}", kZapEndpoint, e.what()));
  }
  auto handler = std::unique_ptr<ZapHandler>(new ZapHandler(std::move(socket)));
  handler->SetKeys(keys);
  // The thread takes the socket over (thread start is a full memory barrier).
  handler->thread_ = std::thread([h = handler.get()] { h->Loop(); });
  return handler;
}

ZapHandler::~ZapHandler() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void ZapHandler::SetKeys(const std::vector<protocol::AuthorizedKey>& keys) {
  std::unordered_map<std::string, std::string> map;
  for (const auto& k : keys) {
    map[k.public_key] = std::filesystem::path(k.file).filename().string();
  }
  std::lock_guard lock(mu_);
  keys_ = std::move(map);
}

void ZapHandler::Loop() {
  while (!stop_) {
    zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      continue;  // EINTR
    }
    if (!(item.revents & ZMQ_POLLIN)) continue;
    std::vector<zmq::message_t> request;
    try {
      if (!zmq::recv_multipart(socket_, std::back_inserter(request), zmq::recv_flags::dontwait)) {
        continue;
      }
      auto reply = Decide(request);
      for (size_t i = 0; i < reply.size(); ++i) {
        socket_.send(zmq::buffer(reply[i]),
                     i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      spdlog::error("ZAP handler: {}", e.what());
    }
  }
}

std::vector<std::string> ZapHandler::Decide(const std::vector<zmq::message_t>& request) {
  // Request: version, request id, domain, address, identity, mechanism,
  // credentials (for CURVE: the client's 32-byte public key).
  // Reply: version, request id, status code, status text, user id, metadata.
  std::string request_id = request.size() > 1 ? Text(request[1]) : "";
  auto refuse = [&](const std::string& why) {
    ++refused_;
    return std::vector<std::string>{"1.0", request_id, "400", why, "", ""};
  };
  if (request.size() < 6 || Text(request[0]) != "1.0") {
    spdlog::warn("ZAP handler: malformed request of {} frames refused", request.size());
    return refuse("malformed ZAP request");
  }
  const std::string address = Text(request[3]);
  const std::string mechanism = Text(request[5]);
  if (mechanism != "CURVE" || request.size() < 7) {
    spdlog::warn("refused a connection from {}: mechanism {} (only CURVE is allowed) (#{})",
                 address, mechanism, refused_.load() + 1);
    return refuse("CURVE required");
  }
  std::string key = protocol::Z85FromBinary(Text(request[6]));
  std::string file;
  {
    std::lock_guard lock(mu_);
    auto it = keys_.find(key);
    if (it != keys_.end()) file = it->second;
  }
  if (file.empty()) {
    spdlog::warn("refused a connection from {}: public key {} is not authorized (#{})", address,
                 key.empty() ? "(malformed)" : key, refused_.load() + 1);
    return refuse("key not authorized");
  }
  ++accepted_;
  spdlog::debug("let in {} with key {} ({})", address, key, file);
  return {"1.0", request_id, "200", "OK", file, ""};
}

}  // namespace crucible::coordinator
