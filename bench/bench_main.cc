// Micro-benchmarks of the hot paths of the coordinator: key encoding (every
// stored trace event) and protocol framing (every message).
#include <benchmark/benchmark.h>

#include "protocol/framing.h"
#include "storage/key_codec.h"

namespace crucible {
namespace {

void BM_EncodeEventKey(benchmark::State& state) {
  uint64_t seq = 0;
  for (auto _ : state) {
    storage::KeyEncoder k;
    k.Str("r20261121-180501-ab12").U64(17).U64(seq++);
    benchmark::DoNotOptimize(k.key());
  }
}
BENCHMARK(BM_EncodeEventKey);

void BM_FrameTraceBatch(benchmark::State& state) {
  v1::Envelope env;
  auto* batch = env.mutable_trace();
  batch->set_lease_id("r20261121-180501-ab12-17-abcdef");
  for (int i = 0; i < state.range(0); ++i) {
    auto* ev = batch->add_events();
    ev->set_seq(i);
    ev->set_kind("TOOL");
    ev->set_name("edit_file");
    ev->set_attrs_json(R"({"path":"inventory/models.py","files":["inventory/models.py"]})");
  }
  for (auto _ : state) {
    auto frames = protocol::Encode(env);
    auto decoded = protocol::Decode(frames);
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_FrameTraceBatch)->Arg(1)->Arg(64)->Arg(256);

}  // namespace
}  // namespace crucible

BENCHMARK_MAIN();
