//! A small, fast, seedable generator: every sample's randomness comes from (seed, epoch, index),
//! so batches are the same whatever the number of workers.

/// SplitMix64 (Steele, Lea, Flood 2014): enough quality for augmentation, and splittable.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: mix(seed) }
    }

    /// The generator of one sample of one epoch.
    pub fn for_sample(seed: u64, epoch: u64, index: u64) -> Self {
        Self::new(mix(mix(seed ^ 0x5eed) ^ epoch.wrapping_mul(0x9e37_79b9_7f4a_7c15)) ^ index)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [low, high).
    pub fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Uniform integer in [0, bound).
    pub fn below(&mut self, bound: usize) -> usize {
        assert!(bound > 0, "empty range");
        ((self.next_u64() as u128 * bound as u128) >> 64) as usize
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Gamma(`shape`, 1) (Marsaglia & Tsang 2000); a shape below 1 as Gamma(shape + 1) ·
    /// U^(1/shape).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        assert!(shape > 0.0, "Gamma's shape must be positive, not {shape}");
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.uniform();
            if u.ln() < 0.5 * x * x + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(`a`, `b`), as X / (X + Y) of two Gamma draws. Where both underflow (shapes far
    /// below 1), the limit: 1 with probability a / (a + b), else 0.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        let (x, y) = (self.gamma(a), self.gamma(b));
        if x + y > 0.0 {
            x / (x + y)
        } else if self.chance(a / (a + b)) {
            1.0
        } else {
            0.0
        }
    }

    /// `true` with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// A random permutation of `0..n` (Fisher–Yates).
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_look_right() {
        let mut rng = Rng::new(7);
        let n = 100_000;
        let uniform: f64 = (0..n).map(|_| rng.uniform()).sum::<f64>() / n as f64;
        assert!((uniform - 0.5).abs() < 0.01, "mean {uniform}");
        let normals: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.02 && (var - 1.0).abs() < 0.03,
            "{mean} {var}"
        );
    }

    #[test]
    fn beta_draws_have_beta_moments() {
        let mut rng = Rng::new(11);
        let n = 100_000;
        // Beta(α, α): mean ½, variance 1 / (4 (2α + 1)); α = 0.2 (mixup's usual) is U-shaped.
        for alpha in [0.2, 1.0, 3.0] {
            let draws: Vec<f64> = (0..n).map(|_| rng.beta(alpha, alpha)).collect();
            assert!(draws.iter().all(|x| (0.0..=1.0).contains(x)));
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            let expected = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "α {alpha}: mean {mean}");
            assert!(
                (var / expected - 1.0).abs() < 0.03,
                "α {alpha}: variance {var}"
            );
        }
        // Gamma(k): mean and variance k.
        for shape in [0.5, 2.5] {
            let draws: Vec<f64> = (0..n).map(|_| rng.gamma(shape)).collect();
            let mean = draws.iter().sum::<f64>() / n as f64;
            let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
            assert!((mean / shape - 1.0).abs() < 0.02, "Γ({shape}): mean {mean}");
            assert!(
                (var / shape - 1.0).abs() < 0.05,
                "Γ({shape}): variance {var}"
            );
        }
    }

    #[test]
    fn permutations_are_permutations_and_seeded() {
        let a = Rng::new(1).permutation(1000);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, Rng::new(1).permutation(1000));
        assert_ne!(a, Rng::new(2).permutation(1000));
    }
}
