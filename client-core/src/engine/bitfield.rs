//! A fixed-length set of piece indices in the wire's bitfield layout (high bit of byte 0 =
//! piece 0). Invariant: spare bits past `len` are always zero and `count` is the number of set
//! bits, so [`Bitfield::as_bytes`] can go on the wire as is.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bitfield {
    bits: Vec<u8>,
    len: u32,
    count: u32,
}

impl Bitfield {
    /// All clear.
    pub fn new(len: u32) -> Self {
        Self {
            bits: vec![0; (len as usize).div_ceil(8)],
            len,
            count: 0,
        }
    }

    /// All set.
    pub fn full(len: u32) -> Self {
        let mut field = Self::new(len);
        for i in 0..len {
            field.set(i);
        }
        field
    }

    /// From a received bitfield payload. The length must be exactly `ceil(len / 8)` bytes (BEP 3:
    /// anything else is a protocol error). Spare bits should be zero; like WebTorrent we ignore
    /// them instead of dropping the peer.
    pub fn from_bytes(bytes: &[u8], len: u32) -> Option<Self> {
        if bytes.len() != (len as usize).div_ceil(8) {
            return None;
        }
        let mut field = Self {
            bits: bytes.to_vec(),
            len,
            count: 0,
        };
        let spare = (field.bits.len() * 8) as u32 - len;
        if spare > 0 {
            if let Some(last) = field.bits.last_mut() {
                *last &= 0xFFu8 << spare;
            }
        }
        field.count = field.bits.iter().map(|b| b.count_ones()).sum();
        Some(field)
    }

    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of set bits.
    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn is_full(&self) -> bool {
        self.count == self.len
    }

    pub fn get(&self, index: u32) -> bool {
        index < self.len && self.bits[(index / 8) as usize] & (0x80 >> (index % 8)) != 0
    }

    /// Sets a bit; returns whether it changed. Out-of-range indices are ignored.
    pub fn set(&mut self, index: u32) -> bool {
        if index >= self.len || self.get(index) {
            return false;
        }
        self.bits[(index / 8) as usize] |= 0x80 >> (index % 8);
        self.count += 1;
        true
    }

    /// Clears a bit; returns whether it changed.
    pub fn clear(&mut self, index: u32) -> bool {
        if !self.get(index) {
            return false;
        }
        self.bits[(index / 8) as usize] &= !(0x80 >> (index % 8));
        self.count -= 1;
        true
    }

    /// The wire payload.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }

    /// Indices of set bits, ascending.
    pub fn ones(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.len).filter(move |&i| self.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_spare_bits() {
        let mut field = Bitfield::new(10);
        assert!(field.set(0));
        assert!(field.set(9));
        assert!(!field.set(9));
        assert!(!field.set(10));
        assert_eq!(field.as_bytes(), &[0x80, 0x40]);
        assert_eq!(field.count(), 2);
        let parsed = Bitfield::from_bytes(&[0x80, 0x7F], 10).unwrap();
        assert_eq!(parsed.as_bytes(), &[0x80, 0x40]);
        assert_eq!(parsed.count(), 2);
        assert!(Bitfield::from_bytes(&[0x80], 10).is_none());
        assert!(Bitfield::full(10).is_full());
        assert_eq!(Bitfield::full(10).as_bytes(), &[0xFF, 0xC0]);
    }
}
