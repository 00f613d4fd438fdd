// The statistics behind every comparison Crucible reports (docs/reports.md,
// "The statistics"): intervals on rates, paired tests between agents,
// pass@k, multiple-comparison correction and the smallest detectable
// difference. Pure functions of their inputs: the bootstrap draws from a
// fixed-seed generator of its own, so the same data gives the same interval
// on every machine.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace crucible::stats {

// z of a two-sided 95% interval and of 80% power.
inline constexpr double kZ95 = 1.959963984540054;
inline constexpr double kZ80 = 0.8416212335729143;
inline constexpr int kBootstrapResamples = 10'000;
inline constexpr uint64_t kBootstrapSeed = 20261130;

struct Interval {
  double low = 0;
  double high = 0;
};

// Wilson score interval of `successes` out of `n` at `z` (95% by default);
// [0, 1] when n is 0.
Interval Wilson(int successes, int n, double z = kZ95);

// McNemar's exact test on paired outcomes: `b` pairs where only the first
// succeeded, `c` where only the second did. Two-sided p-value, 2 *
// P(X <= min(b, c)) for X ~ Binomial(b + c, 1/2), capped at 1; 1 when
// b + c is 0.
double McNemarExact(int b, int c);

// A difference with its interval.
struct Estimate {
  double value = 0;
  Interval ci;
};

// Paired bootstrap over tasks: `a[i]` and `b[i]` are the first and second
// agent's values on task i (a rate's 0/1, or the mean over the task's
// samples). Resamples tasks with replacement `resamples` times from a
// generator seeded with `seed`, and returns mean(b - a) with the 2.5th and
// 97.5th percentiles of the resampled means. a and b must have equal size;
// an empty input gives {0, {0, 0}}.
Estimate PairedBootstrap(std::span<const double> a, std::span<const double> b,
                         int resamples = kBootstrapResamples, uint64_t seed = kBootstrapSeed);

// pass@k, the unbiased estimator of Chen et al. (2021): the chance that at
// least one of k samples drawn without replacement from n, of which c pass,
// passes: 1 - C(n-c, k) / C(n, k). Requires 0 <= c <= n and 1 <= k <= n.
double PassAtK(int n, int c, int k);

// pass^k: the chance that all k samples drawn without replacement pass:
// C(c, k) / C(n, k). Requires 0 <= c <= n and 1 <= k <= n.
double PassHatK(int n, int c, int k);

// Sample variance (n - 1 in the denominator) of one task's values across
// samples; 0 with fewer than two values.
double SampleVariance(std::span<const double> values);

// Holm's step-down correction: adjusted p-values, in the order given.
std::vector<double> Holm(std::span<const double> p);

// The smallest difference in a rate that a paired test on `tasks` tasks
// detects with 80% power at two-sided alpha 0.05, given the standard
// deviation `sd_diff` of the per-task differences:
// (z_0.975 + z_0.80) * sd_diff / sqrt(tasks). Infinity for 0 tasks.
double MinimumDetectable(int tasks, double sd_diff);

// The per-task standard deviation of paired 0/1 differences to plan with:
// from the observed share of discordant tasks psi and the observed
// difference d, sqrt(psi - d^2); when no task is discordant it falls back
// on the rates being independent, psi = pa (1 - pb) + pb (1 - pa), and when
// that is 0 too (both rates 0 or 1), on the worst case psi = 0.5; and when
// every task is discordant the same way (psi - d^2 = 0), on psi, the
// variance under no difference; so that a suite never claims to detect
// differences it has no evidence about.
double PairedBinarySd(int tasks, int only_a, int only_b, double rate_a, double rate_b);

// Standard deviation of a list (n - 1), 0 with fewer than two values.
double StdDev(std::span<const double> values);

}  // namespace crucible::stats
