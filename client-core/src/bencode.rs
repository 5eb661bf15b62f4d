//! Bencoding (BEP 3): one owned value type, canonical encoding, bounded decoding.
//!
//! This module owns the byte format shared by `.torrent` files, tracker responses and the
//! extension messages of the peer wire protocol. Its invariants:
//!
//! - **Encoding is canonical**: dictionary keys come out sorted bytewise (they live in a
//!   `BTreeMap`), integers without leading zeros, so `decode(v.encode()) == v` always holds and equal
//!   values always have equal bytes (which is what makes info-hashes reproducible).
//! - **Decoding is strict about numbers, lenient about dictionaries**: leading zeros, `-0`, empty
//!   numbers and integers outside `i64` are errors, but unsorted or duplicate dictionary keys are
//!   accepted because real torrents contain them (for duplicates the last one wins, as in the
//!   JavaScript `bencode` package WebTorrent uses). Anything that needs the exact original bytes
//!   (the info-hash) takes them from [`dict_value_span`] rather than re-encoding.
//! - **Decoding is safe on hostile input**: it never panics, never overflows, never recurses (an
//!   explicit stack bounded by [`Limits::max_depth`] replaces recursion), and never allocates from a
//!   declared length that the remaining input cannot back, so memory stays proportional to the
//!   input size. [`Limits`] bounds depth, value count and string size on top of that.
//!
//! Every error carries the byte offset where decoding stopped.

use std::collections::BTreeMap;
use std::ops::Range;

/// A bencoded value. Byte strings are raw bytes (most are UTF-8, `pieces` and peer ids are not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Bounds applied while decoding untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most lists/dicts nested inside each other (a top-level dict is depth 1). Decoding does
    /// not recurse, but dropping and encoding a `Value` do, so keep this in the hundreds.
    pub max_depth: usize,
    /// Most values in one document, counting containers, dictionary keys and scalars.
    pub max_items: usize,
    /// Longest single byte string.
    pub max_bytes_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 64,
            max_items: 1_000_000,
            max_bytes_len: 64 << 20,
        }
    }
}

/// Why some bytes are not (acceptable) bencoding. `offset` is where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("bencode: unexpected end of input at byte {offset}")]
    UnexpectedEof { offset: usize },
    #[error("bencode: unexpected byte 0x{byte:02x} at byte {offset}, expected {expected}")]
    UnexpectedByte {
        offset: usize,
        byte: u8,
        expected: &'static str,
    },
    #[error("bencode: invalid integer at byte {offset}: {reason}")]
    InvalidInteger { offset: usize, reason: &'static str },
    #[error("bencode: invalid string length at byte {offset}: {reason}")]
    InvalidLength { offset: usize, reason: &'static str },
    #[error("bencode: string of {len} bytes at byte {offset} runs past the end of input ({available} bytes left)")]
    StringPastEnd {
        offset: usize,
        len: usize,
        available: usize,
    },
    #[error("bencode: string of {len} bytes at byte {offset} exceeds the limit of {max} bytes")]
    StringTooLong {
        offset: usize,
        len: usize,
        max: usize,
    },
    #[error("bencode: nesting deeper than {max} levels at byte {offset}")]
    TooDeep { offset: usize, max: usize },
    #[error("bencode: more than {max} values (at byte {offset})")]
    TooManyItems { offset: usize, max: usize },
    #[error("bencode: {len} bytes of trailing data after the value, at byte {offset}")]
    TrailingData { offset: usize, len: usize },
}

impl Error {
    /// The byte offset in the input where decoding stopped.
    pub fn offset(&self) -> usize {
        match *self {
            Error::UnexpectedEof { offset }
            | Error::UnexpectedByte { offset, .. }
            | Error::InvalidInteger { offset, .. }
            | Error::InvalidLength { offset, .. }
            | Error::StringPastEnd { offset, .. }
            | Error::StringTooLong { offset, .. }
            | Error::TooDeep { offset, .. }
            | Error::TooManyItems { offset, .. }
            | Error::TrailingData { offset, .. } => offset,
        }
    }
}

/// Decodes exactly one value that must span the whole input, with [`Limits::default`].
pub fn decode(input: &[u8]) -> Result<Value, Error> {
    decode_with(input, &Limits::default())
}

/// Decodes exactly one value that must span the whole input.
pub fn decode_with(input: &[u8], limits: &Limits) -> Result<Value, Error> {
    let (value, used) = decode_prefix(input, limits)?;
    if used != input.len() {
        return Err(Error::TrailingData {
            offset: used,
            len: input.len() - used,
        });
    }
    Ok(value)
}

/// Decodes one value at the start of `input` and returns it with the number of bytes it used.
/// Whatever follows is left alone (ut_metadata appends raw piece data after its dictionary).
pub fn decode_prefix(input: &[u8], limits: &Limits) -> Result<(Value, usize), Error> {
    let mut parser = Parser::new(input, limits);
    let value = parser.value(0)?;
    Ok((value, parser.pos))
}

/// Finds `key` in the dictionary at the start of `input` and returns the byte range of its value,
/// exactly as written (for the info-hash, which is the SHA-1 of the original `info` bytes).
///
/// The whole dictionary is checked (with default limits); bytes after it are ignored. If the key
/// appears more than once the last occurrence is returned, matching what [`decode`] keeps.
pub fn dict_value_span(input: &[u8], key: &[u8]) -> Result<Option<Range<usize>>, Error> {
    let limits = Limits::default();
    let mut parser = Parser::new(input, &limits);
    parser.expect_dict_start()?;
    let mut found = None;
    while let Some(k) = parser.dict_key()? {
        let start = parser.pos;
        // The dictionary itself is depth 1, so its values start one level down.
        parser.value(1)?;
        if k == key {
            found = Some(start..parser.pos);
        }
    }
    Ok(found)
}

/// A container being filled while decoding; the explicit stack replaces recursion.
enum Frame {
    List(Vec<Value>),
    /// `key` is `Some` between reading a key and reading its value.
    Dict {
        entries: BTreeMap<Vec<u8>, Value>,
        key: Option<Vec<u8>>,
    },
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    limits: &'a Limits,
    items: usize,
}

impl<'a> Parser<'a> {
    fn new(input: &'a [u8], limits: &'a Limits) -> Self {
        Self {
            input,
            pos: 0,
            limits,
            items: 0,
        }
    }

    fn peek(&self) -> Result<u8, Error> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(Error::UnexpectedEof { offset: self.pos })
    }

    fn count_item(&mut self) -> Result<(), Error> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(Error::TooManyItems {
                offset: self.pos,
                max: self.limits.max_items,
            });
        }
        Ok(())
    }

    fn expect_dict_start(&mut self) -> Result<(), Error> {
        match self.peek()? {
            b'd' => {
                self.count_item()?;
                self.pos += 1;
                Ok(())
            }
            byte => Err(Error::UnexpectedByte {
                offset: self.pos,
                byte,
                expected: "a dictionary ('d')",
            }),
        }
    }

    /// Inside a dictionary: reads the next key, or the closing `e` (then `None`).
    fn dict_key(&mut self) -> Result<Option<&'a [u8]>, Error> {
        match self.peek()? {
            b'e' => {
                self.pos += 1;
                Ok(None)
            }
            b'0'..=b'9' => self.byte_string().map(Some),
            byte => Err(Error::UnexpectedByte {
                offset: self.pos,
                byte,
                expected: "a dictionary key (byte string) or 'e'",
            }),
        }
    }

    /// Reads one complete value. `depth` is how many containers already enclose it.
    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let mut stack: Vec<Frame> = Vec::new();
        loop {
            // Step 1: produce the next complete value, or open/close a container.
            let byte = self.peek()?;
            let awaiting_key = matches!(stack.last(), Some(Frame::Dict { key: None, .. }));
            let completed = if awaiting_key {
                match self.dict_key()? {
                    Some(k) => {
                        if let Some(Frame::Dict { key, .. }) = stack.last_mut() {
                            *key = Some(k.to_vec());
                        }
                        continue;
                    }
                    None => match stack.pop() {
                        Some(Frame::Dict { entries, .. }) => Value::Dict(entries),
                        // `awaiting_key` saw a dictionary on top of the stack.
                        _ => continue,
                    },
                }
            } else {
                match byte {
                    b'e' if matches!(stack.last(), Some(Frame::List(_))) => {
                        self.pos += 1;
                        match stack.pop() {
                            Some(Frame::List(items)) => Value::List(items),
                            _ => continue,
                        }
                    }
                    b'i' => {
                        self.count_item()?;
                        Value::Int(self.integer()?)
                    }
                    b'0'..=b'9' => Value::Bytes(self.byte_string()?.to_vec()),
                    b'l' | b'd' => {
                        if depth + stack.len() >= self.limits.max_depth {
                            return Err(Error::TooDeep {
                                offset: self.pos,
                                max: self.limits.max_depth,
                            });
                        }
                        self.count_item()?;
                        self.pos += 1;
                        stack.push(if byte == b'l' {
                            Frame::List(Vec::new())
                        } else {
                            Frame::Dict {
                                entries: BTreeMap::new(),
                                key: None,
                            }
                        });
                        continue;
                    }
                    _ => {
                        return Err(Error::UnexpectedByte {
                            offset: self.pos,
                            byte,
                            expected: "a value ('i', 'l', 'd' or a string length)",
                        })
                    }
                }
            };

            // Step 2: hand the completed value to its container, or return it.
            match stack.last_mut() {
                None => return Ok(completed),
                Some(Frame::List(items)) => items.push(completed),
                Some(Frame::Dict { entries, key }) => {
                    if let Some(k) = key.take() {
                        entries.insert(k, completed);
                    }
                }
            }
        }
    }

    /// `i<digits>e` with an optional minus sign; canonical form only.
    fn integer(&mut self) -> Result<i64, Error> {
        let start = self.pos;
        self.pos += 1; // 'i'
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut n: i64 = 0;
        loop {
            let byte = self.peek()?;
            match byte {
                b'0'..=b'9' => {
                    if self.pos > digits_start && self.input[digits_start] == b'0' {
                        return Err(Error::InvalidInteger {
                            offset: start,
                            reason: "leading zero",
                        });
                    }
                    let digit = i64::from(byte - b'0');
                    // Accumulate towards the sign so that i64::MIN is representable.
                    n = n
                        .checked_mul(10)
                        .and_then(|n| {
                            if negative {
                                n.checked_sub(digit)
                            } else {
                                n.checked_add(digit)
                            }
                        })
                        .ok_or(Error::InvalidInteger {
                            offset: start,
                            reason: "does not fit in 64 bits",
                        })?;
                    self.pos += 1;
                }
                b'e' => break,
                _ => {
                    return Err(Error::UnexpectedByte {
                        offset: self.pos,
                        byte,
                        expected: "a digit or 'e'",
                    })
                }
            }
        }
        if self.pos == digits_start {
            return Err(Error::InvalidInteger {
                offset: start,
                reason: "no digits",
            });
        }
        if negative && n == 0 {
            return Err(Error::InvalidInteger {
                offset: start,
                reason: "negative zero",
            });
        }
        self.pos += 1; // 'e'
        Ok(n)
    }

    /// `<length>:<bytes>`, borrowed from the input.
    fn byte_string(&mut self) -> Result<&'a [u8], Error> {
        let start = self.pos;
        self.count_item()?;
        let mut len: usize = 0;
        loop {
            let byte = self.peek()?;
            match byte {
                b'0'..=b'9' => {
                    if self.pos > start && self.input[start] == b'0' {
                        return Err(Error::InvalidLength {
                            offset: start,
                            reason: "leading zero",
                        });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|len| len.checked_add(usize::from(byte - b'0')))
                        .ok_or(Error::InvalidLength {
                            offset: start,
                            reason: "too large",
                        })?;
                    self.pos += 1;
                }
                b':' if self.pos > start => break,
                _ => {
                    return Err(Error::UnexpectedByte {
                        offset: self.pos,
                        byte,
                        expected: "a digit or ':'",
                    })
                }
            }
        }
        self.pos += 1; // ':'
        if len > self.limits.max_bytes_len {
            return Err(Error::StringTooLong {
                offset: start,
                len,
                max: self.limits.max_bytes_len,
            });
        }
        // Check against the remaining input before touching memory: a declared length is only a
        // claim.
        let available = self.input.len() - self.pos;
        if len > available {
            return Err(Error::StringPastEnd {
                offset: start,
                len,
                available,
            });
        }
        let bytes = &self.input[self.pos..self.pos + len];
        self.pos += len;
        Ok(bytes)
    }
}

impl Value {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    /// Appends the canonical encoding to `out`.
    ///
    /// Recursive: values from [`decode`] are at most [`Limits::max_depth`] deep, and values built
    /// in code are shallow.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(b'i');
                out.extend_from_slice(n.to_string().as_bytes());
                out.push(b'e');
            }
            Value::Bytes(bytes) => encode_bytes(bytes, out),
            Value::List(items) => {
                out.push(b'l');
                for item in items {
                    item.encode_into(out);
                }
                out.push(b'e');
            }
            Value::Dict(entries) => {
                out.push(b'd');
                for (key, value) in entries {
                    encode_bytes(key, out);
                    value.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }

    /// A dictionary from `(key, value)` pairs: `Value::dict([("a", 1.into()), ("b", "x".into())])`.
    /// A repeated key keeps its last value.
    pub fn dict<K, I>(entries: I) -> Value
    where
        K: AsRef<[u8]>,
        I: IntoIterator<Item = (K, Value)>,
    {
        Value::Dict(
            entries
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_vec(), v))
                .collect(),
        )
    }

    /// A list from anything convertible into values.
    pub fn list<T: Into<Value>, I: IntoIterator<Item = T>>(items: I) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }

    /// A byte string.
    pub fn bytes(bytes: impl Into<Vec<u8>>) -> Value {
        Value::Bytes(bytes.into())
    }

    /// Looks `key` up if this is a dictionary.
    pub fn get(&self, key: &[u8]) -> Option<&Value> {
        self.as_dict()?.get(key)
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string, if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_dict(&self) -> Option<&BTreeMap<Vec<u8>, Value>> {
        match self {
            Value::Dict(entries) => Some(entries),
            _ => None,
        }
    }
}

fn encode_bytes(bytes: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<i32> for Value {
    fn from(n: i32) -> Self {
        Value::Int(n.into())
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Self {
        Value::Int(n.into())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Bytes(s.as_bytes().to_vec())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Bytes(s.into_bytes())
    }
}

impl From<&[u8]> for Value {
    fn from(b: &[u8]) -> Self {
        Value::Bytes(b.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(items)
    }
}

impl From<BTreeMap<Vec<u8>, Value>> for Value {
    fn from(entries: BTreeMap<Vec<u8>, Value>) -> Self {
        Value::Dict(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &[u8]) -> Error {
        decode(input).expect_err(&String::from_utf8_lossy(input))
    }

    #[test]
    fn decodes_each_kind() {
        assert_eq!(decode(b"i42e").unwrap(), Value::Int(42));
        assert_eq!(decode(b"i-7e").unwrap(), Value::Int(-7));
        assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(decode(b"4:spam").unwrap(), Value::from("spam"));
        assert_eq!(decode(b"0:").unwrap(), Value::from(""));
        assert_eq!(
            decode(b"l4:spami1ee").unwrap(),
            Value::list([Value::from("spam"), 1.into()])
        );
        let d = decode(b"d3:cow3:moo4:spaml1:a1:bee").unwrap();
        assert_eq!(d.get(b"cow").and_then(Value::as_str), Some("moo"));
        assert_eq!(
            d.get(b"spam").and_then(Value::as_list).map(<[_]>::len),
            Some(2)
        );
        assert_eq!(decode(b"de").unwrap(), Value::Dict(BTreeMap::new()));
        assert_eq!(decode(b"le").unwrap(), Value::List(vec![]));
    }

    #[test]
    fn integer_extremes() {
        assert_eq!(
            decode(b"i9223372036854775807e").unwrap(),
            Value::Int(i64::MAX)
        );
        assert_eq!(
            decode(b"i-9223372036854775808e").unwrap(),
            Value::Int(i64::MIN)
        );
        assert!(matches!(
            err(b"i9223372036854775808e"),
            Error::InvalidInteger { .. }
        ));
        assert!(matches!(
            err(b"i-9223372036854775809e"),
            Error::InvalidInteger { .. }
        ));
    }

    #[test]
    fn rejects_non_canonical_numbers() {
        for bad in [
            &b"i03e"[..],
            b"i-0e",
            b"i-03e",
            b"i00e",
            b"ie",
            b"i-e",
            b"i1",
            b"i+1e",
            b"i 1e",
            b"i1.0e",
            b"01:a",
            b"00:",
            b":",
            b"-1:a",
        ] {
            err(bad);
        }
        assert_eq!(
            err(b"i-0e"),
            Error::InvalidInteger {
                offset: 0,
                reason: "negative zero"
            }
        );
        assert_eq!(
            err(b"li1ei03ee"),
            Error::InvalidInteger {
                offset: 4,
                reason: "leading zero"
            }
        );
    }

    #[test]
    fn rejects_structural_errors() {
        assert_eq!(err(b""), Error::UnexpectedEof { offset: 0 });
        assert_eq!(err(b"l"), Error::UnexpectedEof { offset: 1 });
        assert_eq!(err(b"d1:a"), Error::UnexpectedEof { offset: 4 });
        assert!(matches!(
            err(b"d1:ae"),
            Error::UnexpectedByte { offset: 4, .. }
        ));
        assert!(matches!(
            err(b"di1ei2ee"),
            Error::UnexpectedByte { offset: 1, .. }
        ));
        assert!(matches!(err(b"e"), Error::UnexpectedByte { offset: 0, .. }));
        assert!(matches!(err(b"x"), Error::UnexpectedByte { .. }));
        assert_eq!(err(b"i1ei2e"), Error::TrailingData { offset: 3, len: 3 });
        assert_eq!(
            err(b"5:abc"),
            Error::StringPastEnd {
                offset: 0,
                len: 5,
                available: 3
            }
        );
        assert!(matches!(
            err(b"99999999999999999999999:a"),
            Error::InvalidLength { .. }
        ));
    }

    #[test]
    fn huge_declared_length_does_not_allocate() {
        // 64 MiB declared, 1 byte present: must fail on the length check, not try to allocate.
        let limits = Limits {
            max_bytes_len: usize::MAX,
            ..Limits::default()
        };
        let e = decode_with(b"18446744073709551615:x", &limits).unwrap_err();
        assert!(matches!(e, Error::StringPastEnd { .. }));
    }

    #[test]
    fn accepts_unsorted_and_duplicate_keys_but_encodes_canonically() {
        let v = decode(b"d1:bi1e1:ai2e1:bi3ee").unwrap();
        assert_eq!(v.get(b"b"), Some(&Value::Int(3)), "last duplicate wins");
        assert_eq!(v.encode(), b"d1:ai2e1:bi3ee");
    }

    #[test]
    fn limits_are_enforced() {
        let deep = [vec![b'l'; 65], vec![b'e'; 65]].concat();
        assert!(matches!(err(&deep), Error::TooDeep { max: 64, .. }));
        let ok = [vec![b'l'; 64], vec![b'e'; 64]].concat();
        assert!(decode(&ok).is_ok());
        // Very deep input must not overflow the stack even with a generous limit.
        let very_deep = vec![b'l'; 100_000];
        let limits = Limits {
            max_depth: usize::MAX,
            ..Limits::default()
        };
        assert!(matches!(
            decode_with(&very_deep, &limits),
            Err(Error::UnexpectedEof { .. })
        ));

        let limits = Limits {
            max_items: 3,
            ..Limits::default()
        };
        assert!(decode_with(b"li1ei2ee", &limits).is_ok());
        assert!(matches!(
            decode_with(b"li1ei2ei3ee", &limits),
            Err(Error::TooManyItems { max: 3, .. })
        ));
        let limits = Limits {
            max_bytes_len: 3,
            ..Limits::default()
        };
        assert!(decode_with(b"3:abc", &limits).is_ok());
        assert!(matches!(
            decode_with(b"4:abcd", &limits),
            Err(Error::StringTooLong { len: 4, max: 3, .. })
        ));
    }

    #[test]
    fn prefix_reports_bytes_used() {
        let input = b"d8:msg_typei1e5:piecei0eeRAWDATA";
        let (v, used) = decode_prefix(input, &Limits::default()).unwrap();
        assert_eq!(&input[used..], b"RAWDATA");
        assert_eq!(v.get(b"piece"), Some(&Value::Int(0)));
    }

    #[test]
    fn value_span_is_exact() {
        let input = b"d8:announce3:url4:infod4:name1:x1:ai1eee";
        let span = dict_value_span(input, b"info").unwrap().unwrap();
        assert_eq!(&input[span], b"d4:name1:x1:ai1ee");
        assert_eq!(dict_value_span(input, b"nope").unwrap(), None);
        assert!(dict_value_span(b"li1ee", b"info").is_err());
        assert!(dict_value_span(b"d4:info", b"info").is_err());
        // Last duplicate wins, like decode.
        let dup = b"d4:infoi1e4:infoi2ee";
        assert_eq!(
            &dup[dict_value_span(dup, b"info").unwrap().unwrap()],
            b"i2e"
        );
    }

    #[test]
    fn builders_and_round_trip() {
        let v = Value::dict([
            ("name", Value::from("x")),
            ("length", Value::from(5i64)),
            ("list", Value::list(["a", "b"])),
            ("raw", Value::bytes(vec![0u8, 255])),
        ]);
        let bytes = v.encode();
        assert_eq!(
            bytes,
            b"d6:lengthi5e4:listl1:a1:be4:name1:x3:raw2:\x00\xffe".to_vec()
        );
        assert_eq!(decode(&bytes).unwrap(), v);
        assert_eq!(v.get(b"raw").and_then(Value::as_str), None);
        assert_eq!(Value::from(1i64).as_bytes(), None);
    }
}
