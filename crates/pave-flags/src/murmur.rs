//! MurmurHash3 x86 32-bit, the hash every Unleash client uses for stickiness, fed in parts so
//! `"{groupId}:{userId}"` is hashed without building the string.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// The hash of the concatenation of `parts`.
pub fn murmur3_32(parts: &[&[u8]], seed: u32) -> u32 {
    Prefix::new(parts, seed).hash(b"")
}

fn round(h: u32, k: u32) -> u32 {
    (h ^ mix(k)).rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64)
}

/// The hash state after a fixed prefix (`"{groupId}:"`), made once when a flag is compiled so
/// an evaluation hashes only the context's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    h: u32,
    pending: [u8; 4],
    filled: usize,
    len: usize,
}

impl Prefix {
    pub fn new(parts: &[&[u8]], seed: u32) -> Prefix {
        let mut p = Prefix { h: seed, pending: [0; 4], filled: 0, len: 0 };
        for part in parts {
            p = p.feed(part);
        }
        p
    }

    fn feed(mut self, mut bytes: &[u8]) -> Prefix {
        self.len += bytes.len();
        if self.filled > 0 {
            let take = (4 - self.filled).min(bytes.len());
            self.pending[self.filled..self.filled + take].copy_from_slice(&bytes[..take]);
            self.filled += take;
            bytes = &bytes[take..];
            if self.filled < 4 {
                return self;
            }
            self.h = round(self.h, u32::from_le_bytes(self.pending));
            self.filled = 0;
        }
        let mut chunks = bytes.chunks_exact(4);
        for c in &mut chunks {
            self.h = round(self.h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        }
        let rest = chunks.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.filled = rest.len();
        self
    }

    /// The hash of the prefix followed by `id`. Written out rather than as another `feed`:
    /// this runs on every sticky evaluation, and the pending bytes are kept in a register
    /// instead of being copied through a buffer.
    pub fn hash(&self, id: &[u8]) -> u32 {
        let mut h = self.h;
        let mut k = u32::from_le_bytes(self.pending) & low_bytes(self.filled);
        let mut n = self.filled;
        let mut rest = id;
        while n < 4 {
            let Some((&b, tail)) = rest.split_first() else { break };
            k |= u32::from(b) << (8 * n);
            n += 1;
            rest = tail;
        }
        if n == 4 {
            h = round(h, k);
            let mut chunks = rest.chunks_exact(4);
            for c in &mut chunks {
                h = round(h, u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            }
            let tail = chunks.remainder();
            k = 0;
            for (i, b) in tail.iter().enumerate() {
                k |= u32::from(*b) << (8 * i);
            }
            n = tail.len();
        }
        if n > 0 {
            h ^= mix(k);
        }
        avalanche(h ^ (self.len + id.len()) as u32)
    }
}

/// A mask of the low `n` bytes of a word (`n` < 4).
fn low_bytes(n: usize) -> u32 {
    ((1u64 << (8 * n)) - 1) as u32
}

fn avalanche(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors_and_any_split_agree() {
        // Reference values of MurmurHash3_x86_32.
        assert_eq!(murmur3_32(&[b""], 0), 0);
        assert_eq!(murmur3_32(&[b""], 1), 0x514e_28b7);
        assert_eq!(murmur3_32(&[b"hello"], 0), 0x248b_fa47);
        assert_eq!(murmur3_32(&[b"The quick brown fox jumps over the lazy dog"], 0), 0x2e4f_f723);
        let whole = b"groupId:user-123456";
        let h = murmur3_32(&[whole], 86_028_157);
        assert_eq!(Prefix::new(&[b"groupId", b":"], 86_028_157).hash(b"user-123456"), h);
        for i in 0..whole.len() {
            assert_eq!(Prefix::new(&[&whole[..i]], 86_028_157).hash(&whole[i..]), h, "prefix of {i}");
        }
        for i in 0..whole.len() {
            for j in i..whole.len() {
                assert_eq!(murmur3_32(&[&whole[..i], &whole[i..j], &whole[j..]], 86_028_157), h, "{i} {j}");
            }
        }
    }
}
