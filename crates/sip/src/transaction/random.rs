//! Injected randomness for branches and tags, so tests are deterministic.

/// A source of random 64-bit values. The shell seeds it from the operating system; tests
/// give a fixed seed so the generated branches and tags repeat from run to run.
pub trait RandomSource: std::fmt::Debug + Send {
    fn next_u64(&mut self) -> u64;
}

/// SplitMix64: tiny, fast, good statistical quality, and fully determined by its seed.
/// Branches and tags need uniqueness, not secrecy, so a seeded generator is enough as long
/// as the seed itself comes from the OS in production.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Production randomness: rand's thread-local CSPRNG (seeded from the OS), so tags and
/// branches are unpredictable as §19.3 asks. Tests use [`SplitMix64`] instead.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemRandom;

impl RandomSource for SystemRandom {
    fn next_u64(&mut self) -> u64 {
        rand::random()
    }
}

/// The RFC 3261 magic cookie that opens every branch of a compliant implementation.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A new branch: the magic cookie followed by 96 random bits in hex.
pub fn new_branch(random: &mut dyn RandomSource) -> String {
    format!(
        "{MAGIC_COOKIE}{:016x}{:08x}",
        random.next_u64(),
        random.next_u64() as u32
    )
}

/// A new From/To tag: 64 random bits in hex (§19.3 asks for at least 32).
pub fn new_tag(random: &mut dyn RandomSource) -> String {
    format!("{:016x}", random.next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_branches_carry_the_cookie() {
        let mut first = SplitMix64::new(7);
        let mut second = SplitMix64::new(7);
        let a = new_branch(&mut first);
        let b = new_branch(&mut second);
        assert_eq!(a, b);
        assert!(a.starts_with(MAGIC_COOKIE));
        assert_eq!(a.len(), MAGIC_COOKIE.len() + 24);
        assert_ne!(new_branch(&mut first), a);
    }

    #[test]
    fn system_random_differs_between_calls() {
        let mut random = SystemRandom;
        let values: std::collections::HashSet<u64> = (0..16).map(|_| random.next_u64()).collect();
        assert_eq!(values.len(), 16);
    }
}
