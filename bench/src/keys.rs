//! Which key each request uses: uniform, sequential or zipf over `0..keys`.
//!
//! Owns: the key-index samplers (zipf by rejection-inversion, O(1) per draw and no table, so a
//! million keys cost nothing to set up). Must not touch: key bytes (`cli::KeyFormat`), sockets.

use crate::cli::KeyPattern;
use rand::Rng;
use rand::rngs::SmallRng;

/// Zipf over `1..=n` with exponent `s`: P(k) proportional to 1/k^s.
///
/// Rejection-inversion sampling (Hörmann and Derflinger, 1996), as Apache Commons RNG's
/// `RejectionInversionZipfSampler` implements it.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    exponent: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    squeeze: f64,
}

impl Zipf {
    pub fn new(n: u64, exponent: f64) -> Self {
        assert!(
            n >= 1 && exponent > 0.0,
            "zipf needs n >= 1 and exponent > 0"
        );
        let mut zipf = Zipf {
            n: n as f64,
            exponent,
            h_integral_x1: 0.0,
            h_integral_n: 0.0,
            squeeze: 0.0,
        };
        zipf.h_integral_x1 = zipf.h_integral(1.5) - 1.0;
        zipf.h_integral_n = zipf.h_integral(zipf.n + 0.5);
        zipf.squeeze = 2.0 - zipf.h_integral_inverse(zipf.h_integral(2.5) - zipf.h(2.0));
        zipf
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut SmallRng) -> u64 {
        loop {
            let u =
                self.h_integral_n + rng.random::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.squeeze || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }

    fn h(&self, x: f64) -> f64 {
        (-self.exponent * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let log_x = x.ln();
        helper2((1.0 - self.exponent) * log_x) * log_x
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.exponent)).max(-1.0);
        (helper1(t) * x).exp()
    }
}

/// ln(1+x)/x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1)/x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}

/// Draws key indices in `0..keys` for one connection or thread.
#[derive(Debug, Clone)]
pub enum KeyPicker {
    Uniform {
        keys: u64,
    },
    /// `next`, then `next + stride`, ... modulo `keys`: threads with distinct offsets and
    /// a stride of the thread count cover every key exactly once per lap.
    Sequential {
        keys: u64,
        next: u64,
        stride: u64,
    },
    Zipf(Zipf),
}

impl KeyPicker {
    pub fn new(pattern: KeyPattern, keys: u64, exponent: f64, offset: u64, stride: u64) -> Self {
        match pattern {
            KeyPattern::Uniform => KeyPicker::Uniform { keys },
            KeyPattern::Sequential => KeyPicker::Sequential {
                keys,
                next: offset % keys,
                stride,
            },
            KeyPattern::Zipf => KeyPicker::Zipf(Zipf::new(keys, exponent)),
        }
    }

    #[inline]
    pub fn next(&mut self, rng: &mut SmallRng) -> u64 {
        match self {
            KeyPicker::Uniform { keys } => rng.random_range(0..*keys),
            KeyPicker::Sequential { keys, next, stride } => {
                let key = *next;
                *next = (*next + *stride) % *keys;
                key
            }
            KeyPicker::Zipf(zipf) => zipf.sample(rng) - 1,
        }
    }

    /// `count` distinct keys into `out` (cleared first), as an application's multi-get
    /// would ask for them; sorted.
    pub fn distinct(&mut self, count: usize, rng: &mut SmallRng, out: &mut Vec<u64>) {
        out.clear();
        let limit = match self {
            KeyPicker::Uniform { keys } | KeyPicker::Sequential { keys, .. } => *keys,
            KeyPicker::Zipf(zipf) => zipf.n as u64,
        };
        let count = count.min(usize::try_from(limit).unwrap_or(usize::MAX));
        while out.len() < count {
            while out.len() < count {
                out.push(self.next(rng));
            }
            out.sort_unstable();
            out.dedup();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zipf_ranks_follow_the_power_law() {
        let mut rng = SmallRng::seed_from_u64(7);
        let zipf = Zipf::new(1_000_000, 0.9);
        let mut counts = [0u64; 11];
        let draws = 2_000_000;
        for _ in 0..draws {
            let k = zipf.sample(&mut rng);
            assert!((1..=1_000_000).contains(&k));
            if k <= 10 {
                counts[k as usize] += 1;
            }
        }
        // P(1)/P(k) = k^0.9.
        for k in [2usize, 4, 10] {
            let expected = (k as f64).powf(0.9);
            let seen = counts[1] as f64 / counts[k] as f64;
            assert!(
                (seen / expected - 1.0).abs() < 0.05,
                "rank {k}: {seen} vs {expected}"
            );
        }
        // P(1) = 1/H(n, 0.9); H(1e6, 0.9) = 30.38.
        let p1 = counts[1] as f64 / draws as f64;
        assert!((p1 * 30.38 - 1.0).abs() < 0.05, "P(1) = {p1}");
    }

    #[test]
    fn sequential_threads_cover_every_key_once() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut seen = vec![0; 10];
        for thread in 0..3 {
            let mut picker = KeyPicker::new(KeyPattern::Sequential, 10, 0.0, thread, 3);
            let quota = 10 / 3 + usize::from(thread < 10 % 3);
            for _ in 0..quota {
                seen[picker.next(&mut rng) as usize] += 1;
            }
        }
        assert_eq!(seen, [1; 10]);
    }

    #[test]
    fn distinct_keys_are_distinct() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mut picker = KeyPicker::new(KeyPattern::Zipf, 1000, 1.2, 0, 1);
        let mut keys = Vec::new();
        picker.distinct(100, &mut rng, &mut keys);
        assert_eq!(keys.len(), 100);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
    }
}
