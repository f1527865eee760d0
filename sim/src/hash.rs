//! FNV-1a 64: a fixed, specified hash for trace digests. std's hashers are randomly seeded
//! and may change between releases, so they never touch anything that is printed or compared.

const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// An incremental FNV-1a 64 hasher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(OFFSET_BASIS)
    }
}

impl Fnv64 {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
    }

    pub fn write_u64(&mut self, v: u64) {
        self.write(&v.to_le_bytes());
    }

    pub fn finish(&self) -> u64 {
        self.0
    }
}

/// FNV-1a 64 of a byte string.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = Fnv64::default();
    h.write(bytes);
    h.finish()
}

/// The hasher as a byte sink, so an encoder can feed it without building the bytes first.
impl std::io::Write for Fnv64 {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        Fnv64::write(self, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Digest of a serializable payload: FNV-1a over its bincode encoding, which is a fixed,
/// platform-independent byte layout. The encoding streams into the hasher: every traced
/// message is digested, and a buffer per message was a good part of its cost.
pub fn digest<T: serde::Serialize>(value: &T) -> u64 {
    let mut hasher = Fnv64::default();
    match bincode::serialize_into(&mut hasher, value) {
        Ok(()) => hasher.finish(),
        // A payload that cannot be encoded still needs a stable digest; its absence is the fact.
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_streams_the_same_bytes_as_encoding_first() {
        let values: Vec<(u64, String, Vec<u8>, Option<i32>)> =
            vec![(0, String::new(), vec![], None), (u64::MAX, "héllo".into(), vec![1, 2, 3], Some(-7))];
        for value in &values {
            assert_eq!(digest(value), fnv1a64(&bincode::serialize(value).unwrap()));
        }
    }

    #[test]
    fn matches_published_fnv1a_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }
}
