#include "stats/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace crucible::stats {

Interval Wilson(int successes, int n, double z) {
  if (n <= 0) return {0, 1};
  const double p = static_cast<double>(successes) / n;
  const double z2 = z * z;
  const double denom = 1 + z2 / n;
  const double centre = (p + z2 / (2.0 * n)) / denom;
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / denom;
  // At p = 0 or 1 one bound is exactly 0 or 1; rounding must leave it
  // neither a hair beyond nor a hair short.
  return {successes <= 0 ? 0.0 : std::clamp(centre - half, 0.0, 1.0),
          successes >= n ? 1.0 : std::clamp(centre + half, 0.0, 1.0)};
}

double McNemarExact(int b, int c) {
  const int n = b + c;
  if (n <= 0) return 1;
  const int k = std::min(b, c);
  // P(X <= k) for X ~ Binomial(n, 1/2), summed in log space so that a few
  // thousand discordant pairs do not underflow term by term.
  const double log_half_n = n * std::log(0.5);
  double sum = 0;
  for (int i = 0; i <= k; ++i) {
    const double log_choose =
        std::lgamma(n + 1.0) - std::lgamma(i + 1.0) - std::lgamma(n - i + 1.0);
    sum += std::exp(log_choose + log_half_n);
  }
  return std::min(1.0, 2 * sum);
}

namespace {

// The q-quantile of sorted values, interpolating linearly between ranks
// (Hyndman and Fan's type 7, R's and numpy's default).
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

}  // namespace

Estimate PairedBootstrap(std::span<const double> a, std::span<const double> b, int resamples,
                         uint64_t seed) {
  const size_t n = std::min(a.size(), b.size());
  if (n == 0) return {};
  std::vector<double> diff(n);
  for (size_t i = 0; i < n; ++i) diff[i] = b[i] - a[i];
  const double observed = std::accumulate(diff.begin(), diff.end(), 0.0) / static_cast<double>(n);
  if (resamples <= 0) return {observed, {observed, observed}};
  // std::mt19937_64's output is fixed by the standard; the distributions of
  // <random> are not, so indices come from a multiply-shift of our own and
  // the interval is the same with every standard library.
  std::mt19937_64 rng(seed);
  std::vector<double> means(static_cast<size_t>(resamples));
  for (double& mean : means) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const auto index = static_cast<size_t>((static_cast<unsigned __int128>(rng()) * n) >> 64);
      sum += diff[index];
    }
    mean = sum / static_cast<double>(n);
  }
  std::sort(means.begin(), means.end());
  return {observed, {Quantile(means, 0.025), Quantile(means, 0.975)}};
}

double PassAtK(int n, int c, int k) {
  if (n <= 0 || k <= 0 || k > n || c < 0 || c > n) return 0;
  if (n - c < k) return 1;
  // 1 - C(n-c, k) / C(n, k) as a product, which neither overflows nor
  // cancels (the form of Chen et al.'s reference code).
  double none = 1;
  for (int i = n - c + 1; i <= n; ++i) none *= 1.0 - static_cast<double>(k) / i;
  return 1 - none;
}

double PassHatK(int n, int c, int k) {
  if (n <= 0 || k <= 0 || k > n || c < 0 || c > n) return 0;
  if (c < k) return 0;
  double all = 1;
  for (int i = 0; i < k; ++i) all *= static_cast<double>(c - i) / (n - i);
  return all;
}

double SampleVariance(std::span<const double> values) {
  if (values.size() < 2) return 0;
  const double mean =
      std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  double sum = 0;
  for (double v : values) sum += (v - mean) * (v - mean);
  return sum / static_cast<double>(values.size() - 1);
}

double StdDev(std::span<const double> values) { return std::sqrt(SampleVariance(values)); }

std::vector<double> Holm(std::span<const double> p) {
  const size_t m = p.size();
  std::vector<size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return p[x] < p[y]; });
  std::vector<double> adjusted(m);
  double running = 0;
  for (size_t rank = 0; rank < m; ++rank) {
    const size_t i = order[rank];
    running = std::max(running, std::min(1.0, static_cast<double>(m - rank) * p[i]));
    adjusted[i] = running;
  }
  return adjusted;
}

double MinimumDetectable(int tasks, double sd_diff) {
  if (tasks <= 0) return std::numeric_limits<double>::infinity();
  return (kZ95 + kZ80) * sd_diff / std::sqrt(static_cast<double>(tasks));
}

double PairedBinarySd(int tasks, int only_a, int only_b, double rate_a, double rate_b) {
  if (tasks <= 0) return std::sqrt(0.5);
  double psi = static_cast<double>(only_a + only_b) / tasks;
  const double d = static_cast<double>(only_b - only_a) / tasks;
  if (only_a + only_b == 0) {
    psi = rate_a * (1 - rate_b) + rate_b * (1 - rate_a);
    if (psi <= 0) psi = 0.5;
    return std::sqrt(psi);
  }
  return std::sqrt(std::max(0.0, psi - d * d));
}

}  // namespace crucible::stats
