// Placeholder until the scanners land: no rule, no finding.
#include "scoring/scanners.h"

namespace crucible::scoring {

namespace {
class NoScanners : public Scanners {
 public:
  std::vector<v1::Finding> Scan(const std::vector<vcs::DiffFile>&) const override { return {}; }
};
}  // namespace

Result<std::shared_ptr<const Scanners>> Scanners::For(std::span<const std::string>) {
  return std::shared_ptr<const Scanners>(std::make_shared<NoScanners>());
}

}  // namespace crucible::scoring
