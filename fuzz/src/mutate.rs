//! Structure-blind mutations of seed files, of the kinds that find reader bugs: bit flips,
//! bytes and integers at the edges of their ranges (in both byte orders, for headers), cuts,
//! repeats, insertions, splices of two inputs, and numbers in text swapped for extreme ones
//! (for JSON).

/// SplitMix64: small, seeded, and the same on every machine, so a finding is replayed from its
/// seed and iteration alone.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

const EDGE_BYTES: [u8; 10] = [0, 1, 9, 10, 0x7f, 0x80, 0xfe, 0xff, b'"', b'\\'];
const EDGE_U32: [u32; 8] = [
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    4_000_000_000,
    65_536,
    10_001,
];
const EDGE_U64: [u64; 5] = [0, u64::MAX, 1 << 40, 1 << 32, 1 << 63];
const EDGE_NUMBERS: [&str; 9] = [
    "-1",
    "0",
    "18446744073709551616",
    "4294967296",
    "1e309",
    "-0.0",
    "NaN",
    "999999999999",
    "\"x\"",
];

/// A mutation of `input`: one to eight changes stacked, sometimes a splice with `other`; never
/// longer than `max_len`.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng, max_len: usize) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 << rng.below(4) {
        change(&mut data, other, rng);
    }
    data.truncate(max_len);
    data
}

fn change(data: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    let len = data.len();
    if len == 0 {
        data.extend((0..1 + rng.below(16)).map(|_| rng.next_u64() as u8));
        return;
    }
    let at = rng.below(len);
    match rng.below(12) {
        0 => data[at] ^= 1 << rng.below(8),
        1 => data[at] = rng.next_u64() as u8,
        2 => data[at] = EDGE_BYTES[rng.below(EDGE_BYTES.len())],
        3 => data[at] = data[at].wrapping_add(rng.below(33) as u8).wrapping_sub(16),
        4 => {
            let value = EDGE_U32[rng.below(EDGE_U32.len())];
            let bytes = if rng.below(2) == 0 {
                value.to_be_bytes()
            } else {
                value.to_le_bytes()
            };
            overwrite(data, at, &bytes);
        }
        5 => overwrite(data, at, &EDGE_U64[rng.below(EDGE_U64.len())].to_le_bytes()),
        6 => {
            let end = (at + 1 + rng.below(64.min(len - at))).min(len);
            data.drain(at..end);
        }
        7 => {
            let end = (at + 1 + rng.below(64)).min(len);
            let copy = data[at..end].to_vec();
            let to = rng.below(len + 1);
            data.splice(to..to, copy);
        }
        8 => {
            let count = 1 + rng.below(32);
            let bytes: Vec<u8> = (0..count).map(|_| rng.next_u64() as u8).collect();
            data.splice(at..at, bytes);
        }
        9 => data.truncate(at),
        10 if !other.is_empty() => {
            let from = rng.below(other.len());
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        _ => replace_number(data, at, rng),
    }
}

fn overwrite(data: &mut [u8], at: usize, bytes: &[u8]) {
    let end = (at + bytes.len()).min(data.len());
    data[at..end].copy_from_slice(&bytes[..end - at]);
}

/// Replaces the first run of ASCII digits at or after `at` with an extreme number.
fn replace_number(data: &mut Vec<u8>, at: usize, rng: &mut Rng) {
    let Some(start) = data[at..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| at + i)
    else {
        data[at] = EDGE_BYTES[rng.below(EDGE_BYTES.len())];
        return;
    };
    let end = data[start..]
        .iter()
        .position(|b| !b.is_ascii_digit() && *b != b'.')
        .map_or(data.len(), |i| start + i);
    let number = EDGE_NUMBERS[rng.below(EDGE_NUMBERS.len())];
    data.splice(start..end, number.bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutations_and_each_stays_within_bounds() {
        let seed = b"{\"epoch\": 12, \"lr\": 0.1}".to_vec();
        let run = |s: u64| {
            let mut rng = Rng::new(s);
            (0..200)
                .map(|_| mutate(&seed, b"other", &mut rng, 40))
                .collect::<Vec<_>>()
        };
        let first = run(7);
        assert_eq!(first, run(7));
        assert_ne!(first, run(8));
        assert!(first.iter().all(|m| m.len() <= 40));
        assert!(first.iter().filter(|m| **m != seed).count() > 190);
        let lengths: std::collections::HashSet<usize> = first.iter().map(Vec::len).collect();
        assert!(
            lengths.len() > 10,
            "mutations should cut and grow: {lengths:?}"
        );
    }

    #[test]
    fn numbers_in_text_are_swapped_for_extreme_ones() {
        let mut rng = Rng::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100 {
            let mut data = b"{\"epoch\": 12}".to_vec();
            replace_number(&mut data, 0, &mut rng);
            seen.insert(String::from_utf8(data).unwrap());
        }
        assert!(
            seen.contains("{\"epoch\": 18446744073709551616}"),
            "{seen:?}"
        );
        assert!(seen.contains("{\"epoch\": -1}"), "{seen:?}");
    }
}
