//! `.torrent` metainfo: the validated [`Metainfo`] type, parsing, writing, and creation.
//!
//! This module owns the translation between bencoded torrents and a type the rest of the engine
//! can trust without re-checking ("parse, don't validate"). Once a [`Metainfo`] exists:
//!
//! - `info_hash` is the SHA-1 of `raw_info`, the `info` dictionary's bytes exactly as they were
//!   received (unknown keys and non-canonical orderings included), so it names the same swarm as
//!   every other client would;
//! - `info` agrees with `raw_info`: the piece count matches the total length, every file path is
//!   a list of safe, non-empty components (no `.`/`..`, separators or NUL), and file offsets are
//!   the running sum of the lengths without overflow;
//! - the outer fields (trackers, web seeds, dates) are normalised the way parse-torrent does it
//!   (see ../shared/webtorrent-protocol.md §5.4), and never affect the info-hash.
//!
//! The fields are public for reading. Code outside this module should not build or mutate `Info`
//! by hand: the helpers stay panic-free on inconsistent data, but their answers become
//! meaningless. Creating torrents lives in [`create`].

mod create;

pub use create::{default_piece_length, TorrentBuilder, MAX_DEFAULT_PIECE_LENGTH};

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;

use sha1::{Digest, Sha1};

use crate::bencode::{self, Limits, Value};
use crate::id::InfoHash;

/// The largest piece length accepted. Real torrents stay at or below 16 MiB; anything above
/// this is an attack on memory (a whole piece is buffered before it can be verified).
pub const MAX_PIECE_LENGTH: u32 = 256 << 20;

/// Why bytes are not a usable torrent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetainfoError {
    #[error("not a torrent: {0}")]
    Bencode(#[from] bencode::Error),
    #[error("not a torrent: the top level is not a dictionary")]
    NotADictionary,
    #[error("torrent has no `info` dictionary")]
    MissingInfo,
    #[error("info dictionary has no `{0}`")]
    MissingField(&'static str),
    #[error("`{field}` must be {expected}")]
    WrongType {
        field: String,
        expected: &'static str,
    },
    #[error("invalid torrent name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("file {file}: invalid path component {component:?}: {reason}")]
    InvalidPath {
        file: usize,
        component: String,
        reason: &'static str,
    },
    #[error("file {file} has an empty path")]
    EmptyPath { file: usize },
    #[error("multi-file torrent lists no files")]
    NoFiles,
    #[error("file {file}: negative length {length}")]
    NegativeLength { file: usize, length: i64 },
    #[error("total length of the files overflows 64 bits")]
    LengthOverflow,
    #[error("invalid piece length {0}: must be between 1 and {MAX_PIECE_LENGTH} bytes")]
    InvalidPieceLength(i64),
    #[error("`pieces` is {0} bytes long, which is not a multiple of 20")]
    PiecesLength(usize),
    #[error(
        "{actual} piece hashes, but {total_length} bytes in pieces of {piece_length} bytes \
         need {expected}"
    )]
    PieceCount {
        actual: usize,
        expected: u64,
        total_length: u64,
        piece_length: u32,
    },
    #[error("{0} pieces is more than a piece index can address")]
    TooManyPieces(u64),
    #[error("torrent creation: {received} bytes were hashed but the files declare {declared}")]
    LengthMismatch { declared: u64, received: u64 },
}

type Result<T, E = MetainfoError> = std::result::Result<T, E>;

/// A parsed, validated torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    /// SHA-1 of `raw_info`.
    pub info_hash: InfoHash,
    pub info: Info,
    /// The `info` dictionary exactly as received (what ut_metadata serves to peers).
    pub raw_info: Vec<u8>,
    /// Tracker URLs: `announce-list` flattened in order, or else `announce`; no duplicates or
    /// empty strings.
    pub announce: Vec<String>,
    /// Web seeds (BEP 19 `url-list`); no duplicates or empty strings.
    pub url_list: Vec<String>,
    /// As written: seconds, but some old create-torrent versions wrote milliseconds.
    pub creation_date: Option<i64>,
    pub comment: Option<String>,
    pub created_by: Option<String>,
}

/// The validated `info` dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// File name (single-file) or directory name (multi-file); one safe path component.
    pub name: String,
    pub piece_length: u32,
    /// One SHA-1 per piece; `pieces.len() == ceil(total_length / piece_length)`.
    pub pieces: Vec<[u8; 20]>,
    /// At least one file for multi-file torrents; exactly one for single-file torrents.
    pub files: Vec<FileEntry>,
    pub private: bool,
    pub total_length: u64,
    /// `length` at the top of `info` rather than a `files` list. A multi-file torrent holding
    /// one file is *not* single-file (WebSeeds address it differently, protocol §4.2).
    pub single_file: bool,
}

/// One file of a torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Path components below the torrent's directory, NOT including the torrent name. Empty for
    /// a single-file torrent, whose only file is the name itself.
    pub path: Vec<String>,
    pub length: u64,
    /// Where the file starts in the concatenation of all files.
    pub offset: u64,
}

impl FileEntry {
    /// The file's bytes within the concatenation of all files.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset.saturating_add(self.length)
    }
}

impl Metainfo {
    /// Parses a `.torrent` file. Like parse-torrent, bytes after the top-level dictionary are
    /// ignored.
    pub fn parse(bytes: &[u8]) -> Result<Metainfo> {
        let (root, used) = bencode::decode_prefix(bytes, &Limits::default())?;
        if root.as_dict().is_none() {
            return Err(MetainfoError::NotADictionary);
        }
        let span =
            bencode::dict_value_span(&bytes[..used], b"info")?.ok_or(MetainfoError::MissingInfo)?;
        let info_value = root.get(b"info").ok_or(MetainfoError::MissingInfo)?;
        let info = Info::from_value(info_value)?;
        let raw_info = bytes[span].to_vec();
        Ok(Metainfo {
            info_hash: sha1_info_hash(&raw_info),
            info,
            raw_info,
            announce: trackers(&root),
            url_list: web_seeds(&root),
            creation_date: root.get(b"creation date").and_then(Value::as_int),
            comment: text_field(&root, b"comment"),
            created_by: text_field(&root, b"created by"),
        })
    }

    /// Builds a torrent from a bare `info` dictionary, as received over ut_metadata (BEP 9).
    /// The caller compares `info_hash` with the hash it asked for. The bytes must be exactly one
    /// dictionary.
    pub fn from_info_bytes(raw_info: impl Into<Vec<u8>>) -> Result<Metainfo> {
        let raw_info = raw_info.into();
        let info = Info::from_value(&bencode::decode(&raw_info)?)?;
        Ok(Metainfo {
            info_hash: sha1_info_hash(&raw_info),
            info,
            raw_info,
            announce: Vec::new(),
            url_list: Vec::new(),
            creation_date: None,
            comment: None,
            created_by: None,
        })
    }

    /// Writes a `.torrent` file the way create-torrent lays it out (§5.3): `announce` plus
    /// `announce-list` as one-URL tiers, `url-list`, the optional dates and texts, `encoding`
    /// `UTF-8`, and `info` copied byte for byte from `raw_info` so the info-hash is preserved.
    pub fn to_torrent_bytes(&self) -> Vec<u8> {
        let mut outer: BTreeMap<&[u8], Value> = BTreeMap::new();
        if let Some(first) = self.announce.first() {
            outer.insert(b"announce", Value::from(first.as_str()));
            let tiers = self.announce.iter().map(|url| Value::list([url.as_str()]));
            outer.insert(b"announce-list", Value::List(tiers.collect()));
        }
        if !self.url_list.is_empty() {
            outer.insert(
                b"url-list",
                Value::list(self.url_list.iter().map(String::as_str)),
            );
        }
        if let Some(date) = self.creation_date {
            outer.insert(b"creation date", Value::Int(date));
        }
        if let Some(comment) = &self.comment {
            outer.insert(b"comment", Value::from(comment.as_str()));
        }
        if let Some(created_by) = &self.created_by {
            outer.insert(b"created by", Value::from(created_by.as_str()));
        }
        outer.insert(b"encoding", Value::from("UTF-8"));

        // `info` is spliced in as raw bytes at its sorted position, so it cannot live in the map.
        let mut out = Vec::with_capacity(self.raw_info.len() + 256);
        out.push(b'd');
        let mut info_written = false;
        for (key, value) in &outer {
            if !info_written && *key > b"info".as_slice() {
                write_raw_info(&mut out, &self.raw_info);
                info_written = true;
            }
            Value::from(*key).encode_into(&mut out);
            value.encode_into(&mut out);
        }
        if !info_written {
            write_raw_info(&mut out, &self.raw_info);
        }
        out.push(b'e');
        out
    }
}

fn write_raw_info(out: &mut Vec<u8>, raw_info: &[u8]) {
    out.extend_from_slice(b"4:info");
    out.extend_from_slice(raw_info);
}

fn sha1_info_hash(raw_info: &[u8]) -> InfoHash {
    InfoHash(Sha1::digest(raw_info).into())
}

impl Info {
    /// Reads and validates a decoded `info` dictionary.
    pub fn from_value(info: &Value) -> Result<Info> {
        if info.as_dict().is_none() {
            return Err(wrong_type("info", "a dictionary"));
        }

        let name_bytes = utf8_variant(info, b"name.utf-8", b"name")
            .ok_or(MetainfoError::MissingField("name"))?
            .as_bytes()
            .ok_or_else(|| wrong_type("name", "a byte string"))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        check_component(&name).map_err(|reason| MetainfoError::InvalidName {
            name: name.clone(),
            reason,
        })?;

        let piece_length = info
            .get(b"piece length")
            .ok_or(MetainfoError::MissingField("piece length"))?
            .as_int()
            .ok_or_else(|| wrong_type("piece length", "an integer"))?;
        let piece_length = checked_piece_length(piece_length)?;

        let pieces_bytes = info
            .get(b"pieces")
            .ok_or(MetainfoError::MissingField("pieces"))?
            .as_bytes()
            .ok_or_else(|| wrong_type("pieces", "a byte string"))?;
        if pieces_bytes.len() % 20 != 0 {
            return Err(MetainfoError::PiecesLength(pieces_bytes.len()));
        }
        let pieces: Vec<[u8; 20]> = pieces_bytes
            .chunks_exact(20)
            .filter_map(|chunk| chunk.try_into().ok())
            .collect();

        // Like parse-torrent, `files` wins when both `files` and `length` are present.
        let (files, single_file) = match info.get(b"files") {
            Some(list) => (read_files(list)?, false),
            None => {
                let length = info
                    .get(b"length")
                    .ok_or(MetainfoError::MissingField("length"))?
                    .as_int()
                    .ok_or_else(|| wrong_type("length", "an integer"))?;
                let length = u64::try_from(length)
                    .map_err(|_| MetainfoError::NegativeLength { file: 0, length })?;
                let file = FileEntry {
                    path: Vec::new(),
                    length,
                    offset: 0,
                };
                (vec![file], true)
            }
        };
        let total_length = files.last().map_or(0, |f| f.offset + f.length);
        check_piece_count(pieces.len(), total_length, piece_length)?;

        // parse-torrent: `!!info.private`.
        let private = match info.get(b"private") {
            None => false,
            Some(Value::Int(n)) => *n != 0,
            Some(_) => return Err(wrong_type("private", "an integer")),
        };

        Ok(Info {
            name,
            piece_length,
            pieces,
            files,
            private,
            total_length,
            single_file,
        })
    }

    /// Number of pieces (validated to fit a wire-protocol piece index).
    pub fn piece_count(&self) -> u32 {
        u32::try_from(self.pieces.len()).unwrap_or(u32::MAX)
    }

    /// Where piece `index` starts in the concatenation of all files.
    pub fn piece_offset(&self, index: u32) -> u64 {
        u64::from(index) * u64::from(self.piece_length)
    }

    /// Length of piece `index`: `piece_length`, except for a shorter last piece; 0 past the end.
    pub fn piece_size(&self, index: u32) -> u32 {
        let offset = self.piece_offset(index);
        if index >= self.piece_count() || offset >= self.total_length {
            return 0;
        }
        let left = self.total_length - offset;
        u32::try_from(left).map_or(self.piece_length, |left| left.min(self.piece_length))
    }

    /// The bytes of piece `index` within the concatenation of all files (empty past the end).
    pub fn piece_range(&self, index: u32) -> Range<u64> {
        let start = self.piece_offset(index);
        start..start + u64::from(self.piece_size(index))
    }

    /// The expected SHA-1 of piece `index`.
    pub fn piece_hash(&self, index: u32) -> Option<&[u8; 20]> {
        self.pieces.get(usize::try_from(index).ok()?)
    }

    /// Maps a byte range of the concatenated files onto the files it covers, in order, as
    /// `(file_index, offset_in_file, len)`. Empty files and bytes past the end are skipped.
    /// Use with [`Info::piece_range`] to find where a piece is stored.
    pub fn file_slices(&self, range: Range<u64>) -> impl Iterator<Item = (usize, u64, u64)> + '_ {
        let start = range.start;
        let end = range.end.min(self.total_length);
        // Files are sorted by offset; skip the ones ending at or before `start`.
        let first = self
            .files
            .partition_point(|f| f.offset.saturating_add(f.length) <= start);
        self.files
            .iter()
            .enumerate()
            .skip(first)
            .take_while(move |(_, f)| f.offset < end)
            .filter_map(move |(index, f)| {
                let from = start.max(f.offset);
                let to = end.min(f.offset.saturating_add(f.length));
                (to > from).then(|| (index, from - f.offset, to - from))
            })
    }

    /// The file's path as parse-torrent spells it: `name/dir/file` (just `name` for a single
    /// file). For display and URLs; storage should use the components.
    pub fn display_path(&self, file_index: usize) -> Option<String> {
        let file = self.files.get(file_index)?;
        let mut path = self.name.clone();
        for component in &file.path {
            path.push('/');
            path.push_str(component);
        }
        Some(path)
    }
}

fn wrong_type(field: &str, expected: &'static str) -> MetainfoError {
    MetainfoError::WrongType {
        field: field.to_owned(),
        expected,
    }
}

/// BEP 3 extension used by many clients: `name.utf-8`/`path.utf-8` hold the UTF-8 spelling when
/// `name`/`path` are in a legacy encoding. Prefer it when it has the right shape.
fn utf8_variant<'a>(dict: &'a Value, utf8_key: &[u8], key: &[u8]) -> Option<&'a Value> {
    match dict.get(utf8_key) {
        Some(v @ (Value::Bytes(_) | Value::List(_))) => Some(v),
        _ => dict.get(key),
    }
}

fn read_files(list: &Value) -> Result<Vec<FileEntry>> {
    let list = list
        .as_list()
        .ok_or_else(|| wrong_type("files", "a list"))?;
    if list.is_empty() {
        return Err(MetainfoError::NoFiles);
    }
    let mut files = Vec::with_capacity(list.len());
    let mut offset: u64 = 0;
    for (index, entry) in list.iter().enumerate() {
        if entry.as_dict().is_none() {
            return Err(wrong_type(&format!("files[{index}]"), "a dictionary"));
        }
        // A missing field is reported as a wrong type so that the message names the file.
        let length = entry
            .get(b"length")
            .and_then(Value::as_int)
            .ok_or_else(|| wrong_type(&format!("files[{index}].length"), "an integer"))?;
        let length = u64::try_from(length).map_err(|_| MetainfoError::NegativeLength {
            file: index,
            length,
        })?;

        let components = utf8_variant(entry, b"path.utf-8", b"path")
            .and_then(Value::as_list)
            .ok_or_else(|| wrong_type(&format!("files[{index}].path"), "a list"))?;
        if components.is_empty() {
            return Err(MetainfoError::EmptyPath { file: index });
        }
        let mut path = Vec::with_capacity(components.len());
        for component in components {
            let bytes = component.as_bytes().ok_or_else(|| {
                wrong_type(&format!("files[{index}].path"), "a list of byte strings")
            })?;
            let component = String::from_utf8_lossy(bytes).into_owned();
            check_component(&component).map_err(|reason| MetainfoError::InvalidPath {
                file: index,
                component: component.clone(),
                reason,
            })?;
            path.push(component);
        }

        files.push(FileEntry {
            path,
            length,
            offset,
        });
        offset = offset
            .checked_add(length)
            .ok_or(MetainfoError::LengthOverflow)?;
    }
    Ok(files)
}

/// One component of a file path (or the torrent name) must stay inside the download directory
/// however it is joined: no empty or dot components, no separators of any platform, no NUL.
/// With those excluded, absolute paths cannot be expressed either.
pub(crate) fn check_component(component: &str) -> Result<(), &'static str> {
    if component.is_empty() {
        Err("empty")
    } else if component == "." || component == ".." {
        Err("refers to a directory")
    } else if component.contains(['/', '\\']) {
        Err("contains a path separator")
    } else if component.contains('\0') {
        Err("contains NUL")
    } else {
        Ok(())
    }
}

pub(crate) fn checked_piece_length(piece_length: i64) -> Result<u32> {
    u32::try_from(piece_length)
        .ok()
        .filter(|&len| (1..=MAX_PIECE_LENGTH).contains(&len))
        .ok_or(MetainfoError::InvalidPieceLength(piece_length))
}

/// The piece count a total length needs, if a piece index can address it.
pub(crate) fn needed_pieces(total_length: u64, piece_length: u32) -> Result<u64> {
    let expected = total_length.div_ceil(u64::from(piece_length));
    if expected > u64::from(u32::MAX) {
        return Err(MetainfoError::TooManyPieces(expected));
    }
    Ok(expected)
}

fn check_piece_count(actual: usize, total_length: u64, piece_length: u32) -> Result<()> {
    let expected = needed_pieces(total_length, piece_length)?;
    if actual as u64 != expected {
        return Err(MetainfoError::PieceCount {
            actual,
            expected,
            total_length,
            piece_length,
        });
    }
    Ok(())
}

/// Collects URLs in order, dropping empty strings, non-UTF-8 and repeats.
#[derive(Default)]
pub(crate) struct UrlList {
    urls: Vec<String>,
    seen: HashSet<String>,
}

impl UrlList {
    pub(crate) fn push(&mut self, url: &str) {
        if !url.is_empty() && self.seen.insert(url.to_owned()) {
            self.urls.push(url.to_owned());
        }
    }

    fn push_value(&mut self, url: &Value) {
        if let Some(url) = url.as_str() {
            self.push(url);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.urls
    }
}

/// parse-torrent's rule: every URL of `announce-list`, flattened in order; `announce` only if
/// that gives nothing. Malformed entries are skipped: trackers never affect the info-hash, and
/// a torrent with a broken tracker list still has peers on other trackers and web seeds.
fn trackers(root: &Value) -> Vec<String> {
    let mut urls = UrlList::default();
    if let Some(tiers) = root.get(b"announce-list").and_then(Value::as_list) {
        for tier in tiers.iter().filter_map(Value::as_list) {
            tier.iter().for_each(|url| urls.push_value(url));
        }
    }
    if urls.urls.is_empty() {
        if let Some(url) = root.get(b"announce") {
            urls.push_value(url);
        }
    }
    urls.into_vec()
}

/// `url-list` is a single string (empty = none) or a list of strings.
fn web_seeds(root: &Value) -> Vec<String> {
    let mut urls = UrlList::default();
    match root.get(b"url-list") {
        Some(Value::List(list)) => list.iter().for_each(|url| urls.push_value(url)),
        Some(url) => urls.push_value(url),
        None => {}
    }
    urls.into_vec()
}

/// Free text outside `info`; legacy encodings are shown with replacement characters.
fn text_field(root: &Value, key: &[u8]) -> Option<String> {
    let bytes = root.get(key)?.as_bytes()?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_dict(extra: &[(&str, Value)]) -> Value {
        let mut entries = vec![
            ("name", Value::from("x")),
            ("piece length", Value::from(4i64)),
            ("pieces", Value::bytes(vec![0u8; 40])),
            ("length", Value::from(7i64)),
        ];
        entries.extend(extra.iter().cloned());
        Value::dict(entries)
    }

    fn multi(files: Vec<Value>) -> Value {
        info_dict(&[("files", Value::List(files))])
    }

    fn file(path: &[&str], length: i64) -> Value {
        Value::dict([
            ("length", length.into()),
            ("path", Value::list(path.iter().copied())),
        ])
    }

    #[test]
    fn piece_geometry() {
        let info = Info::from_value(&info_dict(&[])).unwrap();
        assert_eq!(info.piece_count(), 2);
        assert_eq!(info.piece_size(0), 4);
        assert_eq!(info.piece_size(1), 3);
        assert_eq!(info.piece_size(2), 0);
        assert_eq!(info.piece_range(1), 4..7);
        assert_eq!(info.piece_offset(u32::MAX), u64::from(u32::MAX) * 4);
        assert!(info.single_file);
        assert!(info.files[0].path.is_empty());
        assert_eq!(info.display_path(0).as_deref(), Some("x"));
    }

    #[test]
    fn file_slices_span_files_and_skip_empty_ones() {
        let v = multi(vec![
            file(&["a"], 3),
            file(&["empty"], 0),
            file(&["d", "b"], 2),
            file(&["c"], 2),
        ]);
        let info = Info::from_value(&v).unwrap();
        assert_eq!(info.total_length, 7);
        let p0: Vec<_> = info.file_slices(info.piece_range(0)).collect();
        assert_eq!(p0, [(0, 0, 3), (2, 0, 1)]);
        let p1: Vec<_> = info.file_slices(info.piece_range(1)).collect();
        assert_eq!(p1, [(2, 1, 1), (3, 0, 2)]);
        assert_eq!(info.file_slices(5..100).collect::<Vec<_>>(), [(3, 0, 2)]);
        assert_eq!(info.file_slices(7..9).count(), 0);
        assert_eq!(info.display_path(2).as_deref(), Some("x/d/b"));
    }

    #[test]
    fn rejects_unsafe_paths() {
        for bad in [
            &["..", "x"][..],
            &["."],
            &[""],
            &["a/b"],
            &["a\\b"],
            &["a\0"],
            &["/etc"],
        ] {
            let err = Info::from_value(&multi(vec![file(bad, 7)])).unwrap_err();
            assert!(
                matches!(err, MetainfoError::InvalidPath { .. }),
                "{bad:?}: {err}"
            );
        }
        let err = Info::from_value(&multi(vec![file(&[], 7)])).unwrap_err();
        assert_eq!(err, MetainfoError::EmptyPath { file: 0 });
        for bad in ["..", "", "a/b"] {
            let err = Info::from_value(&info_dict(&[("name", bad.into())])).unwrap_err();
            assert!(
                matches!(err, MetainfoError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn rejects_inconsistent_geometry() {
        let cases = [
            (("piece length", Value::from(0i64)), "piece length"),
            (("piece length", Value::from(-4i64)), "piece length"),
            (("pieces", Value::bytes(vec![0u8; 39])), "multiple of 20"),
            (("pieces", Value::bytes(vec![0u8; 60])), "need 2"),
            (("length", Value::from(-1i64)), "negative"),
        ];
        for ((key, value), needle) in cases {
            let err = Info::from_value(&info_dict(&[(key, value)])).unwrap_err();
            assert!(err.to_string().contains(needle), "{key}: {err}");
        }
        let huge = multi(vec![
            file(&["a"], i64::MAX),
            file(&["b"], i64::MAX),
            file(&["c"], 2),
        ]);
        assert_eq!(
            Info::from_value(&huge).unwrap_err(),
            MetainfoError::LengthOverflow
        );
    }

    #[test]
    fn prefers_utf8_variants() {
        let v = info_dict(&[("name.utf-8", "ü".into())]);
        assert_eq!(Info::from_value(&v).unwrap().name, "ü");
        let v = multi(vec![Value::dict([
            ("length", Value::from(7i64)),
            ("path", Value::list(["bad"])),
            ("path.utf-8", Value::list(["good"])),
        ])]);
        assert_eq!(Info::from_value(&v).unwrap().files[0].path, ["good"]);
    }

    #[test]
    fn outer_fields_are_normalised_and_written_back() {
        let info = info_dict(&[]);
        let root = Value::dict([
            ("announce", Value::from("udp://ignored")),
            (
                "announce-list",
                Value::list([
                    Value::list(["wss://a", "wss://b"]),
                    Value::list(["wss://a", ""]),
                    Value::from("not a tier"),
                    Value::list(["wss://c"]),
                ]),
            ),
            ("url-list", Value::from("https://seed/")),
            ("comment", Value::from("hi")),
            ("info", info.clone()),
        ]);
        let m = Metainfo::parse(&root.encode()).unwrap();
        assert_eq!(m.announce, ["wss://a", "wss://b", "wss://c"]);
        assert_eq!(m.url_list, ["https://seed/"]);
        assert_eq!(m.raw_info, info.encode());

        let written = m.to_torrent_bytes();
        let again = Metainfo::parse(&written).unwrap();
        assert_eq!(again, m);
        let outer = bencode::decode(&written).unwrap();
        assert_eq!(outer.encode(), written, "written torrents are canonical");
        assert_eq!(
            outer.get(b"announce").and_then(Value::as_str),
            Some("wss://a")
        );
        assert_eq!(
            outer.get(b"encoding").and_then(Value::as_str),
            Some("UTF-8")
        );
    }

    #[test]
    fn info_hash_covers_raw_bytes_even_when_not_canonical() {
        // Keys out of order: hashing a re-encoding would give a different swarm.
        let raw = b"d6:lengthi7e4:name1:x12:piece lengthi4e6:pieces40:\
            \0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\
            7:privatei1e1:ai0ee";
        let m = Metainfo::from_info_bytes(raw.as_slice()).unwrap();
        assert_eq!(m.info_hash, sha1_info_hash(raw));
        assert_ne!(
            m.info_hash,
            sha1_info_hash(&bencode::decode(raw).unwrap().encode())
        );
        assert!(m.info.private);
        let outer = Metainfo::parse(&m.to_torrent_bytes()).unwrap();
        assert_eq!(outer.info_hash, m.info_hash);
    }

    #[test]
    fn missing_pieces_of_the_torrent() {
        assert_eq!(
            Metainfo::parse(b"d3:fooi1ee").unwrap_err(),
            MetainfoError::MissingInfo
        );
        assert_eq!(
            Metainfo::parse(b"li1ee").unwrap_err(),
            MetainfoError::NotADictionary
        );
        assert!(matches!(
            Metainfo::parse(b"d4:infoi1ee").unwrap_err(),
            MetainfoError::WrongType { .. }
        ));
        let err = Metainfo::from_info_bytes(b"d6:lengthi1ee".as_slice()).unwrap_err();
        assert_eq!(err.to_string(), "info dictionary has no `name`");
    }
}
