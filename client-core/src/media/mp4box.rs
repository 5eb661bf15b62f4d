//! ISO-BMFF (MP4) boxes: reading headers from a prefix, iterating children of a complete box,
//! and writing boxes.
//!
//! Invariants:
//! - A box header is accepted only if its size covers the header itself (8 bytes, 16 with a
//!   64-bit size); `size == 0` means "to the end of the enclosing buffer" (or file, at top level).
//! - [`Boxes`] never yields a box reaching past its buffer: a lying size is an error, after which
//!   the iterator stops (the bytes after a bad size cannot be trusted to be box boundaries).
//! - Nothing here recurses: callers descend explicitly through the boxes they know, so nesting
//!   depth is bounded by the code, not by the input.

use std::fmt;

use super::bytes::Reader;
use super::MediaError;

/// A box type (or sample entry, or brand): four bytes, usually ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FourCc(pub [u8; 4]);

impl FourCc {
    pub const fn new(code: &[u8; 4]) -> Self {
        FourCc(*code)
    }
}

impl fmt::Display for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FourCc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FourCc(\"{self}\")")
    }
}

impl PartialEq<&[u8; 4]> for FourCc {
    fn eq(&self, other: &&[u8; 4]) -> bool {
        &self.0 == *other
    }
}

/// A parsed box header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: FourCc,
    /// 8, or 16 with a 64-bit size.
    pub header_len: u8,
    /// Total size including the header; `None` when the box runs to the end of the file.
    pub size: Option<u64>,
}

/// A header read from the start of `buf`, or how many bytes of `buf` are needed to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderRead {
    Header(BoxHeader),
    NeedBytes(usize),
}

/// Reads the box header at the start of `buf`. `offset` is only for error messages.
pub fn read_header(buf: &[u8], offset: u64) -> Result<HeaderRead, MediaError> {
    if buf.len() < 8 {
        return Ok(HeaderRead::NeedBytes(8));
    }
    let size32 = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = FourCc([buf[4], buf[5], buf[6], buf[7]]);
    let (header_len, size) = match size32 {
        0 => (8, None),
        1 => {
            if buf.len() < 16 {
                return Ok(HeaderRead::NeedBytes(16));
            }
            let mut large = [0; 8];
            large.copy_from_slice(&buf[8..16]);
            (16, Some(u64::from_be_bytes(large)))
        }
        n => (8, Some(u64::from(n))),
    };
    if let Some(size) = size {
        if size < u64::from(header_len) {
            return Err(MediaError::BadBoxSize { kind, offset, size });
        }
    }
    Ok(HeaderRead::Header(BoxHeader {
        kind,
        header_len,
        size,
    }))
}

/// A complete box inside a buffer.
#[derive(Debug, Clone, Copy)]
pub struct Mp4Box<'a> {
    pub kind: FourCc,
    /// Offset of the box's first byte, relative to whatever base the iterator was given.
    pub offset: u64,
    /// The whole box, header included.
    pub raw: &'a [u8],
    /// The payload (after the header).
    pub data: &'a [u8],
}

impl<'a> Mp4Box<'a> {
    /// The child boxes of a container box.
    pub fn children(&self) -> Boxes<'a> {
        let header_len = (self.raw.len() - self.data.len()) as u64;
        Boxes::new(self.data, self.offset + header_len)
    }

    /// The first child of the given type, if any (errors in earlier siblings propagate).
    pub fn child(&self, kind: &[u8; 4]) -> Result<Option<Mp4Box<'a>>, MediaError> {
        find(self.children(), kind)
    }

    /// Like [`Mp4Box::child`], but a missing box is an error.
    pub fn required(
        &self,
        kind: &'static [u8; 4],
        name: &'static str,
    ) -> Result<Mp4Box<'a>, MediaError> {
        self.child(kind)?.ok_or(MediaError::MissingBox(name))
    }

    /// Splits a full box's payload into version, flags and the rest.
    pub(crate) fn full(&self, what: &'static str) -> Result<(u8, u32, Reader<'a>), MediaError> {
        let mut reader = Reader::new(self.data, what);
        let version = reader.u8()?;
        let flags = reader.u24()?;
        Ok((version, flags, reader))
    }
}

/// The first box of the given type among `boxes`.
pub fn find<'a>(boxes: Boxes<'a>, kind: &[u8; 4]) -> Result<Option<Mp4Box<'a>>, MediaError> {
    for b in boxes {
        let b = b?;
        if b.kind == kind {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Iterates over the boxes that fill a complete buffer.
#[derive(Debug, Clone)]
pub struct Boxes<'a> {
    buf: &'a [u8],
    pos: usize,
    base: u64,
    done: bool,
}

impl<'a> Boxes<'a> {
    /// Boxes in `buf`, whose first byte is at offset `base` (for reported offsets).
    pub fn new(buf: &'a [u8], base: u64) -> Self {
        Boxes {
            buf,
            pos: 0,
            base,
            done: false,
        }
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<Mp4Box<'a>, MediaError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let offset = self.base + self.pos as u64;
        let result = match read_header(rest, offset) {
            Ok(HeaderRead::NeedBytes(_)) => Err(MediaError::Truncated("box header")),
            Ok(HeaderRead::Header(header)) => {
                let size = header.size.unwrap_or(rest.len() as u64);
                if size > rest.len() as u64 {
                    Err(MediaError::BadBoxSize {
                        kind: header.kind,
                        offset,
                        size,
                    })
                } else {
                    let size = size as usize;
                    self.pos += size;
                    Ok(Mp4Box {
                        kind: header.kind,
                        offset,
                        raw: &rest[..size],
                        data: &rest[usize::from(header.header_len)..size],
                    })
                }
            }
            Err(err) => Err(err),
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }
}

/// Writes boxes into a byte vector, patching each size when the box is closed.
#[derive(Debug, Default)]
pub(crate) struct BoxWriter {
    pub buf: Vec<u8>,
}

impl BoxWriter {
    pub fn new() -> Self {
        BoxWriter::default()
    }

    /// Opens a box; returns the token [`BoxWriter::end`] needs.
    pub fn begin(&mut self, kind: &[u8; 4]) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(kind);
        start
    }

    /// Opens a full box.
    pub fn begin_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> usize {
        let start = self.begin(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        start
    }

    /// Closes the box opened at `start`. Boxes written here (init segments, `moof`) stay far
    /// below 4 GiB: the caller bounds what goes in.
    pub fn end(&mut self, start: usize) {
        let size = (self.buf.len() - start) as u32;
        self.buf[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// Overwrites a u32 written earlier at `pos`.
    pub fn patch_u32(&mut self, pos: usize, v: u32) {
        self.buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_32_and_64_bit_and_to_end() {
        let b = [0, 0, 0, 16, b'f', b't', b'y', b'p'];
        assert_eq!(
            read_header(&b, 0).unwrap(),
            HeaderRead::Header(BoxHeader {
                kind: FourCc::new(b"ftyp"),
                header_len: 8,
                size: Some(16)
            })
        );
        assert_eq!(read_header(&b[..7], 0).unwrap(), HeaderRead::NeedBytes(8));
        let large = [0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            read_header(&large, 0).unwrap(),
            HeaderRead::Header(BoxHeader {
                kind: FourCc::new(b"mdat"),
                header_len: 16,
                size: Some(1 << 32)
            })
        );
        assert_eq!(
            read_header(&large[..12], 0).unwrap(),
            HeaderRead::NeedBytes(16)
        );
        let to_end = [0, 0, 0, 0, b'm', b'd', b'a', b't'];
        assert!(matches!(
            read_header(&to_end, 0).unwrap(),
            HeaderRead::Header(BoxHeader { size: None, .. })
        ));
        let too_small = [0, 0, 0, 7, b'f', b'r', b'e', b'e'];
        assert!(read_header(&too_small, 0).is_err());
    }

    #[test]
    fn iterator_stops_at_a_lying_size() {
        let mut buf = vec![0, 0, 0, 8, b'f', b'r', b'e', b'e'];
        buf.extend_from_slice(&[0, 0, 0, 100, b's', b'k', b'i', b'p', 1, 2]);
        let items: Vec<_> = Boxes::new(&buf, 0).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(items[1].is_err());
    }

    #[test]
    fn writer_patches_sizes() {
        let mut w = BoxWriter::new();
        let outer = w.begin(b"moov");
        let inner = w.begin_full(b"mvex", 1, 2);
        w.end(inner);
        w.end(outer);
        assert_eq!(
            w.buf,
            [
                0, 0, 0, 20, b'm', b'o', b'o', b'v', 0, 0, 0, 12, b'm', b'v', b'e', b'x', 1, 0, 0,
                2
            ]
        );
        let boxes: Vec<_> = Boxes::new(&w.buf, 0).collect::<Result<_, _>>().unwrap();
        assert_eq!(boxes[0].child(b"mvex").unwrap().unwrap().data, [1, 0, 0, 2]);
    }
}
