#include "coordinator/pack_builder.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace crucible::coordinator {

PackBuilder::PackBuilder() : thread_([this] { Loop(); }) {}

PackBuilder::~PackBuilder() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void PackBuilder::Submit(Job job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
}

std::vector<PackBuilder::Done> PackBuilder::TakeDone() {
  std::lock_guard lock(mu_);
  std::vector<Done> out;
  out.swap(done_);
  return out;
}

void PackBuilder::Loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    auto start = std::chrono::steady_clock::now();
    auto pack = vcs::BuildPack(job.path, job.wide, job.have, /*skip_missing=*/true);
    if (!pack) pack = vcs::BuildPack(job.path, job.asked, job.have);  // what it needs now
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - start)
                  .count();
    std::lock_guard lock(mu_);
    done_.push_back(Done{std::move(job), std::move(pack), ms});
  }
}

PackTransfer::PackTransfer(std::string peer, std::string repo_id, vcs::Pack pack, size_t chunk)
    : peer_(std::move(peer)),
      repo_id_(std::move(repo_id)),
      data_(std::move(pack.data)),
      objects_(pack.objects),
      chunk_(std::max<size_t>(chunk, 1)) {}

v1::Envelope PackTransfer::Next() const {
  v1::Envelope env;
  auto* out = env.mutable_objects_pack();
  out->set_repo_id(repo_id_);
  out->set_objects(objects_);
  out->set_offset(sent_);
  out->set_total_size(data_.size());
  out->set_pack(data_.substr(sent_, std::min(chunk_, data_.size() - sent_)));
  return env;
}

void PackTransfer::Advance() { sent_ = std::min(data_.size(), sent_ + chunk_); }

}  // namespace crucible::coordinator
