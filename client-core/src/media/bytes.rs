//! A bounds-checked big-endian reader: the only way the parsers here read fields, so that a
//! short or lying input becomes [`MediaError::Truncated`] naming the structure, never a panic.

use super::MediaError;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// What is being read, for error messages ("avcC", "sidx", ...).
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn bytes(&mut self, len: usize) -> Result<&'a [u8], MediaError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or(MediaError::Truncated(self.what))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn skip(&mut self, len: usize) -> Result<(), MediaError> {
        self.bytes(len).map(|_| ())
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let out = &self.buf[self.pos..];
        self.pos = self.buf.len();
        out
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MediaError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    pub fn u8(&mut self) -> Result<u8, MediaError> {
        Ok(self.array::<1>()?[0])
    }

    pub fn u16(&mut self) -> Result<u16, MediaError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub fn u24(&mut self) -> Result<u32, MediaError> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    pub fn u32(&mut self) -> Result<u32, MediaError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub fn i32(&mut self) -> Result<i32, MediaError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub fn u64(&mut self) -> Result<u64, MediaError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub fn fourcc(&mut self) -> Result<super::mp4box::FourCc, MediaError> {
        Ok(super::mp4box::FourCc(self.array()?))
    }

    /// A 32-bit field in version 0 of a full box, 64-bit in version 1.
    pub fn u32_or_u64(&mut self, version: u8) -> Result<u64, MediaError> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
}

/// Reads a table's entry count and checks that `count` entries of `entry_len` bytes are really
/// there before anyone allocates for them (a 4-byte count can claim four billion entries).
pub(crate) fn table_count(
    reader: &mut Reader<'_>,
    entry_len: usize,
    what: &'static str,
) -> Result<usize, MediaError> {
    let count = reader.u32()? as usize;
    if count.saturating_mul(entry_len) > reader.remaining() {
        return Err(MediaError::Truncated(what));
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_refuses_to_overrun() {
        let mut r = Reader::new(&[1, 2, 3, 4, 5, 6, 7], "test");
        assert_eq!(r.u16().unwrap(), 0x0102);
        assert_eq!(r.u24().unwrap(), 0x030405);
        assert_eq!(r.u32(), Err(MediaError::Truncated("test")));
        assert_eq!(r.u8().unwrap(), 6);
        assert_eq!(r.bytes(usize::MAX), Err(MediaError::Truncated("test")));
        assert_eq!(r.rest(), &[7]);
    }

    #[test]
    fn table_count_checks_the_bytes_exist() {
        let mut r = Reader::new(&[0, 0, 0, 2, 0, 0, 0, 1], "stco");
        assert_eq!(
            table_count(&mut r, 4, "stco"),
            Err(MediaError::Truncated("stco"))
        );
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff], "stco");
        assert!(table_count(&mut r, 4, "stco").is_err());
    }
}
