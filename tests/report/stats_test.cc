// Reference values for stats/stats.h. Every expected number below was
// computed independently of Crucible, from the source named beside it; the
// python3 lines can be pasted into `python3 -c` as they stand.
#include "stats/stats.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace crucible::stats {
namespace {

// Newcombe's tables print four decimals.
constexpr double kTable = 5e-5;

// Newcombe RG (1998), "Two-sided confidence intervals for the single
// proportion: comparison of seven methods", Stat Med 17:857-872, Table I,
// method 3 (Wilson score interval without continuity correction).
TEST(WilsonTest, MatchesNewcombe1998TableI) {
  struct Row {
    int successes, n;
    double low, high;
  };
  for (const Row& r :
       {Row{81, 263, 0.2553, 0.3662}, Row{15, 148, 0.0624, 0.1605}, Row{0, 20, 0.0000, 0.1611},
        Row{1, 29, 0.0061, 0.1718}, Row{29, 29, 0.8830, 1.0000}}) {
    Interval ci = Wilson(r.successes, r.n);
    EXPECT_NEAR(ci.low, r.low, kTable) << r.successes << "/" << r.n;
    EXPECT_NEAR(ci.high, r.high, kTable) << r.successes << "/" << r.n;
  }
}

TEST(WilsonTest, BoundsStayInsideZeroToOne) {
  // 0/10: the lower bound is exactly 0 and 10/10's upper exactly 1, not a
  // rounding error beyond.
  EXPECT_EQ(Wilson(0, 10).low, 0.0);
  EXPECT_EQ(Wilson(10, 10).high, 1.0);
  // python3: z=1.959963984540054; n=10; print(z*z/n/(1+z*z/n))  -> 0.27753...
  EXPECT_NEAR(Wilson(0, 10).high, 0.277533, 1e-6);
  Interval none = Wilson(0, 0);
  EXPECT_EQ(none.low, 0.0);
  EXPECT_EQ(none.high, 1.0);
}

// Exact two-sided McNemar: 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2),
// capped at 1. Reference values from
//   python3: import math; mc=lambda b,c: min(1, 2*sum(math.comb(b+c,i)
//            for i in range(min(b,c)+1))/2**(b+c)); print(mc(1, 9))
TEST(McNemarExactTest, MatchesBinomialTailSums) {
  struct Row {
    int b, c;
    double p;
  };
  for (const Row& r : {Row{1, 9, 0.021484375}, Row{9, 1, 0.021484375}, Row{2, 12, 0.012939453125},
                       Row{0, 6, 0.03125}, Row{0, 5, 0.0625}, Row{3, 0, 0.25},
                       Row{10, 25, 0.01667384780012071}, Row{5, 5, 1.0}, Row{0, 1, 1.0},
                       Row{40, 80, 0.0003304000183913207}, Row{1000, 1100, 0.030720707864242296}}) {
    EXPECT_NEAR(McNemarExact(r.b, r.c), r.p, 1e-12 + 1e-9 * r.p) << r.b << " vs " << r.c;
  }
  EXPECT_EQ(McNemarExact(0, 0), 1.0);  // no discordant pair: no evidence
}

// pass@k = 1 - C(n-c, k) / C(n, k) and pass^k = C(c, k) / C(n, k), Chen et
// al. (2021), "Evaluating Large Language Models Trained on Code", eq. 1:
//   python3: import math; n,c,k=20,4,10; print(1-math.comb(n-c,k)/math.comb(n,k))
TEST(PassAtKTest, MatchesClosedForm) {
  struct Row {
    int n, c, k;
    double pass_at_k;
  };
  for (const Row& r :
       {Row{10, 3, 1, 0.3}, Row{10, 3, 5, 0.9166666666666666}, Row{5, 0, 2, 0.0}, Row{5, 5, 3, 1.0},
        Row{20, 4, 10, 0.956656346749226}, Row{3, 1, 2, 0.6666666666666667},
        Row{200, 13, 10, 0.4975511147306061}, Row{20, 5, 5, 0.8063080495356038}}) {
    EXPECT_NEAR(PassAtK(r.n, r.c, r.k), r.pass_at_k, 1e-12) << r.n << " " << r.c << " " << r.k;
  }
}

TEST(PassHatKTest, MatchesClosedForm) {
  //   python3: import math; print(math.comb(7,3)/math.comb(10,3))  -> 35/120
  EXPECT_NEAR(PassHatK(10, 7, 3), 0.2916666666666667, 1e-12);
  EXPECT_NEAR(PassHatK(20, 15, 5), 0.19369195046439627, 1e-12);  // 3003/15504
  EXPECT_NEAR(PassHatK(10, 3, 1), 0.3, 1e-12);                   // pass^1 = pass@1 = c/n
  EXPECT_EQ(PassHatK(10, 3, 5), 0.0);                            // fewer passes than k
  EXPECT_EQ(PassHatK(5, 5, 5), 1.0);
}

// Holm S (1979), "A simple sequentially rejective multiple test procedure",
// Scand J Statist 6:65-70; the worked example of the Wikipedia article
// "Holm–Bonferroni method": p = 0.01, 0.04, 0.03, 0.005. Sorted, the
// adjusted values are max-accumulated 4*0.005 = 0.02, 3*0.01 = 0.03,
// 2*0.03 = 0.06, max(0.06, 1*0.04) = 0.06 (R: p.adjust(p, "holm")).
TEST(HolmTest, TextbookExample) {
  std::vector<double> p = {0.01, 0.04, 0.03, 0.005};
  std::vector<double> adjusted = Holm(p);
  ASSERT_EQ(adjusted.size(), 4u);
  EXPECT_NEAR(adjusted[0], 0.03, 1e-12);
  EXPECT_NEAR(adjusted[1], 0.06, 1e-12);
  EXPECT_NEAR(adjusted[2], 0.06, 1e-12);
  EXPECT_NEAR(adjusted[3], 0.02, 1e-12);
}

TEST(HolmTest, CapsAtOneAndKeepsASingleValue) {
  std::vector<double> one = {0.3};
  EXPECT_NEAR(Holm(one)[0], 0.3, 1e-12);
  std::vector<double> p = {0.6, 0.5};  // 2 * 0.5 = 1, then max(1, 0.6) = 1
  std::vector<double> adjusted = Holm(p);
  EXPECT_EQ(adjusted[0], 1.0);
  EXPECT_EQ(adjusted[1], 1.0);
  EXPECT_TRUE(Holm(std::vector<double>{}).empty());
}

// (z_0.975 + z_0.80) * sd / sqrt(n), the normal-approximation sample size
// formula of a paired test solved for the difference:
//   python3: from statistics import NormalDist as N; import math;
//            print((N().inv_cdf(.975)+N().inv_cdf(.8))*0.5/math.sqrt(40))
TEST(MinimumDetectableTest, ClosedForm) {
  EXPECT_NEAR(MinimumDetectable(40, 0.5), 0.22148475870741488, 1e-9);
  EXPECT_NEAR(MinimumDetectable(40, std::sqrt(0.3275)), 0.25350089314435, 1e-9);
  EXPECT_EQ(MinimumDetectable(0, 0.5), std::numeric_limits<double>::infinity());
}

TEST(PairedBinarySdTest, FromDiscordantShareAndItsFallbacks) {
  // 40 tasks, 4 only A, 10 only B: psi = 14/40, d = 6/40,
  // sqrt(0.35 - 0.0225) (python3: print((0.35-0.15**2)**0.5)).
  EXPECT_NEAR(PairedBinarySd(40, 4, 10, 0.5, 0.65), 0.5722761571129799, 1e-12);
  // No discordant task: independent rates, psi = 0.5*0.5 + 0.5*0.5.
  EXPECT_NEAR(PairedBinarySd(20, 0, 0, 0.5, 0.5), std::sqrt(0.5), 1e-12);
  // Both rates 1: no evidence at all, the worst case psi = 0.5.
  EXPECT_NEAR(PairedBinarySd(20, 0, 0, 1.0, 1.0), std::sqrt(0.5), 1e-12);
  // psi = 0.2*0.9 + 0.1*0.8 = 0.26.
  EXPECT_NEAR(PairedBinarySd(20, 0, 0, 0.1, 0.2), std::sqrt(0.26), 1e-12);
}

TEST(SampleVarianceTest, UsesNMinusOne) {
  // python3: import statistics; print(statistics.variance([2,4,4,4,5,5,7,9]))
  std::vector<double> v = {2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_NEAR(SampleVariance(v), 32.0 / 7.0, 1e-12);
  EXPECT_NEAR(StdDev(v), std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_EQ(SampleVariance(std::vector<double>{3}), 0.0);
  EXPECT_EQ(StdDev(std::vector<double>{}), 0.0);
}

TEST(PairedBootstrapTest, SameSeedSameInterval) {
  std::vector<double> a = {1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1};
  std::vector<double> b = {1, 1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0};
  Estimate first = PairedBootstrap(a, b);
  Estimate second = PairedBootstrap(a, b);
  EXPECT_EQ(first.value, second.value);
  EXPECT_EQ(first.ci.low, second.ci.low);
  EXPECT_EQ(first.ci.high, second.ci.high);
  EXPECT_NEAR(first.value, 2.0 / 12.0, 1e-12);  // 4 only-B minus 2 only-A over 12
  // The interval contains the estimate and is not degenerate.
  EXPECT_LE(first.ci.low, first.value);
  EXPECT_GE(first.ci.high, first.value);
  EXPECT_LT(first.ci.low, first.ci.high);
  // Another seed resamples differently.
  Estimate other = PairedBootstrap(a, b, kBootstrapResamples, kBootstrapSeed + 1);
  EXPECT_EQ(other.value, first.value);
}

TEST(PairedBootstrapTest, EqualDifferencesGiveThatValue) {
  std::vector<double> a = {0.2, 0.4, 0.1, 0.9, 0.5};
  std::vector<double> b = {0.5, 0.7, 0.4, 1.2, 0.8};  // every difference 0.3
  Estimate e = PairedBootstrap(a, b);
  EXPECT_NEAR(e.value, 0.3, 1e-12);
  EXPECT_NEAR(e.ci.low, 0.3, 1e-12);
  EXPECT_NEAR(e.ci.high, 0.3, 1e-12);
  Estimate empty = PairedBootstrap(std::vector<double>{}, std::vector<double>{});
  EXPECT_EQ(empty.value, 0.0);
  EXPECT_EQ(empty.ci.low, 0.0);
  EXPECT_EQ(empty.ci.high, 0.0);
}

// For 2,000 tasks the bootstrap percentiles agree with the normal interval
// mean +- 1.96 sd / sqrt(n). The data: d_i = [7i mod 10 < 4] - [3i mod 10 < 3]:
//   python3: import statistics as s, math; n=2000; d=[((i*7)%10<4)-((i*3)%10<3)
//            for i in range(n)]; m=s.mean(d); h=1.959964*s.stdev(d)/math.sqrt(n);
//            print(m-h, m+h)   -> 0.069314 0.130686
// Tolerance 0.003, a tenth of the half-width 0.0307: the bootstrap's own
// Monte Carlo error at 10,000 resamples is about 0.0004, and its divisor n
// against the normal's n - 1 moves the bounds by 0.00001.
TEST(PairedBootstrapTest, LargeSampleAgreesWithNormalApproximation) {
  const int n = 2000;
  std::vector<double> a(n), b(n);
  for (int i = 0; i < n; ++i) {
    b[i] = (i * 7) % 10 < 4 ? 1 : 0;
    a[i] = (i * 3) % 10 < 3 ? 1 : 0;
  }
  Estimate e = PairedBootstrap(a, b);
  EXPECT_NEAR(e.value, 0.1, 1e-12);
  EXPECT_NEAR(e.ci.low, 0.06931403838825417, 0.003);
  EXPECT_NEAR(e.ci.high, 0.13068596161174584, 0.003);
}

}  // namespace
}  // namespace crucible::stats
