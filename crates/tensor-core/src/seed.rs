//! Seeding: every random number in the workspace flows from one `u64` seed through the functions
//! here. candle cannot seed its CPU generator, so parameters are initialised on the host from a
//! seeded stream per parameter name ([`SeededInit`], feature `candle`) instead of with candle's
//! own `randn`.

use rand::{Rng as _, SeedableRng};

#[cfg(feature = "candle")]
mod init;
#[cfg(feature = "candle")]
pub use init::{SeededInit, seed_device};

/// The workspace's random generator: ChaCha8, whose output is stable across platforms and
/// releases.
pub type Rng = rand_chacha::ChaCha8Rng;

/// The generator for one named stream of a seeded run (`"shuffle"`, `"init/conv1.weight"`).
/// Streams with different names are independent, so adding a consumer never shifts another.
pub fn rng(seed: u64, stream: &str) -> Rng {
    Rng::seed_from_u64(seed ^ fnv1a(stream.as_bytes()).rotate_left(17))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Draws a uniformly random permutation of `0..n` (Fisher–Yates) from `rng`.
pub fn permutation(n: usize, rng: &mut Rng) -> Vec<usize> {
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        p.swap(i, j);
    }
    p
}
