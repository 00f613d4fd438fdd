// Stand-in for the openinference adapter until adapter_otel.cc is merged
// (then this file goes): it rejects every line, naming why.
#include "agent-runner/adapters.h"

namespace crucible::runner {
namespace {

class OpenInferenceStub final : public TraceAdapter {
 public:
  Status Line(std::string_view, int64_t, std::vector<v1::TraceEvent>&) override {
    return Fail(Code::kInvalidArgument, "the openinference adapter is not built in");
  }
};

}  // namespace

std::unique_ptr<TraceAdapter> MakeOpenInferenceAdapter(const AdapterOptions&) {
  return std::make_unique<OpenInferenceStub>();
}

}  // namespace crucible::runner
