//! Zipf-distributed ranks in `1..=n` in O(1) memory: user popularity.
//!
//! Rank `k` has probability proportional to `1 / k^s`. Sampling uses rejection-inversion
//! (Hörmann and Derflinger 1996, as in Apache Commons' `RejectionInversionZipfSampler`):
//! no table of `n` weights, so ten million users cost nothing, and on average fewer than
//! two uniform draws per sample.

use crate::rng::Rng;

/// A Zipf distribution over ranks `1..=n` with exponent `s >= 0` (`s = 0` is uniform).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    squeeze: f64,
}

impl Zipf {
    /// Returns the distribution; `n` must be at least 1 and `s` finite and non-negative.
    pub fn new(n: u64, s: f64) -> Zipf {
        debug_assert!(n >= 1 && s.is_finite() && s >= 0.0);
        let mut zipf = Zipf {
            n: n as f64,
            s,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            squeeze: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(zipf.n + 0.5);
        zipf.squeeze = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// Returns one rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u = self.h_integral_n + rng.next_f64() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    /// `h(x) = x^-s`, the unnormalised density.
    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    /// `H(x)`, an integral of `h` (`(x^(1-s) - 1) / (1 - s)`, or `ln x` when `s = 1`).
    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        expm1_over_x((1.0 - self.s) * log_x) * log_x
    }

    /// The inverse of `H`.
    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (ln1p_over_x(t) * x).exp()
    }
}

/// `ln(1 + x) / x`, continuous at 0.
fn ln1p_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn expm1_over_x(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns how often each rank of `1..=n` was drawn in `draws` samples.
    fn histogram(n: u64, s: f64, seed: u64, draws: usize) -> Vec<usize> {
        let zipf = Zipf::new(n, s);
        let mut rng = Rng::new(seed);
        let mut counts = vec![0; n as usize + 1];
        for _ in 0..draws {
            let k = zipf.sample(&mut rng);
            assert!((1..=n).contains(&k), "rank {k} outside 1..={n}");
            counts[k as usize] += 1;
        }
        counts
    }

    /// Returns the exact probability of each rank.
    fn expected(n: u64, s: f64) -> Vec<f64> {
        let weights: Vec<f64> = (1..=n).map(|k| (k as f64).powf(-s)).collect();
        let total: f64 = weights.iter().sum();
        weights.iter().map(|w| w / total).collect()
    }

    #[test]
    fn frequencies_follow_the_zipf_law() {
        for s in [0.0, 0.5, 1.0, 1.3] {
            let draws = 400_000;
            let counts = histogram(50, s, 11, draws);
            for (rank, p) in expected(50, s).iter().enumerate().take(10) {
                let seen = counts[rank + 1] as f64 / draws as f64;
                // Five standard deviations of a binomial proportion.
                let tolerance = 5.0 * (p * (1.0 - p) / draws as f64).sqrt();
                assert!(
                    (seen - p).abs() <= tolerance,
                    "s={s} rank {}: seen {seen:.5}, expected {p:.5}",
                    rank + 1
                );
            }
        }
    }

    #[test]
    fn rank_one_is_twice_as_popular_as_rank_two_at_s_one() {
        let counts = histogram(100_000, 1.0, 3, 300_000);
        let ratio = counts[1] as f64 / counts[2] as f64;
        assert!((1.9..2.1).contains(&ratio), "ratio {ratio}");
    }

    #[test]
    fn a_seed_fixes_the_sequence() {
        let zipf = Zipf::new(1_000_000, 1.0);
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..100).map(|_| zipf.sample(&mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(42), run(42));
        assert_ne!(run(42), run(43));
    }

    #[test]
    fn one_user_is_always_rank_one() {
        let zipf = Zipf::new(1, 1.0);
        let mut rng = Rng::new(5);
        assert!((0..100).all(|_| zipf.sample(&mut rng) == 1));
    }
}
