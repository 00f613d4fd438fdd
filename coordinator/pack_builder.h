// Packfiles for runners, built off the coordinator's loop thread and sent in
// chunks.
//
// libgit2's pack builder needs time in proportion to the repository: 13 ms
// for the sample repository, seconds for a large one. Built on the loop
// thread, a large pack would hold back every heartbeat, lease and
// acknowledgement meanwhile, long enough for runners to give the coordinator
// up. PackBuilder runs the builds on a thread of its own, one at a time, and
// hands finished packs back to the loop, which sends them as ObjectsPack
// chunks (PackTransfer) a few per loop iteration, so heartbeats interleave and
// a pack may be larger than one message.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "protocol/crucible.pb.h"
#include "vcs/pack.h"

namespace crucible::coordinator {

class PackBuilder {
 public:
  struct Job {
    std::string peer;     // the runner that asked
    std::string repo_id;  // as the runner named it
    std::string path;     // the repository on the coordinator
    // The pack is of `wide` (every commit active tasks of the repository
    // need, so a runner asks once per repository); when that fails, of
    // `asked` only. Both minus what is reachable from `have`.
    std::vector<std::string> wide;
    std::vector<std::string> asked;
    std::vector<std::string> have;
  };
  struct Done {
    Job job;
    Result<vcs::Pack> pack;
    int64_t build_ms = 0;
  };

  PackBuilder();
  ~PackBuilder();  // waits for the build under way, drops the queued ones
  PackBuilder(const PackBuilder&) = delete;
  PackBuilder& operator=(const PackBuilder&) = delete;

  void Submit(Job job);
  // The builds finished since the last call, in the order submitted.
  std::vector<Done> TakeDone();

 private:
  void Loop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::vector<Done> done_;
  bool stop_ = false;
  std::thread thread_;
};

// One pack on its way to a runner, as ObjectsPack messages of at most
// `chunk` bytes of pack each (offset, total_size).
class PackTransfer {
 public:
  PackTransfer(std::string peer, std::string repo_id, vcs::Pack pack, size_t chunk);

  const std::string& peer() const { return peer_; }
  const std::string& repo_id() const { return repo_id_; }
  size_t size() const { return data_.size(); }
  uint32_t objects() const { return objects_; }
  size_t chunks() const { return (data_.size() + chunk_ - 1) / chunk_; }
  bool finished() const { return sent_ >= data_.size(); }

  // The next chunk, not yet marked sent.
  v1::Envelope Next() const;
  // Marks the chunk Next() returned as sent.
  void Advance();

 private:
  std::string peer_;
  std::string repo_id_;
  std::string data_;
  uint32_t objects_ = 0;
  size_t chunk_;
  size_t sent_ = 0;
};

}  // namespace crucible::coordinator
