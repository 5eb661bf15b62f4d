//! Deterministic, streaming torrent creation, byte-compatible with create-torrent (protocol §5.1,
//! §5.2): the same files, names and piece length give the same info-hash as WebTorrent.
//!
//! The builder is told the layout up front and then fed the concatenated file bytes in chunks of
//! any size, so a browser can hash a `File` slice by slice without holding it in memory.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

use super::{check_component, checked_piece_length, needed_pieces, UrlList};
use super::{FileEntry, Metainfo, MetainfoError, Result};
use crate::bencode::Value;

/// create-torrent's default cap on the automatic piece length.
pub const MAX_DEFAULT_PIECE_LENGTH: u32 = 4 << 20;

/// The piece length create-torrent picks when none is forced: about 1024 pieces, i.e.
/// `2^round(log2(total / 1024))`, at least 16 KiB and at most 4 MiB.
///
/// JavaScript computes this as `1 << ((Math.log2(total / 1024) + 0.5) | 0)`, a 32-bit shift
/// that wraps for totals above about 1.4 TiB and then yields 16 KiB. We keep 4 MiB there
/// instead: nobody seeds such a torrent from a browser, and 16 KiB pieces would mean tens of
/// millions of hashes.
pub fn default_piece_length(total: u64) -> u32 {
    const MIN: u32 = 16 << 10;
    if total < 1024 {
        return MIN;
    }
    // `(x + 0.5) | 0` truncates, which is rounding half up for the positive values here. Float
    // precision is no concern: thresholds fall between integers far wider apart than f64 error.
    let exponent = ((total as f64 / 1024.0).log2() + 0.5).floor();
    if exponent >= MAX_DEFAULT_PIECE_LENGTH.trailing_zeros() as f64 {
        return MAX_DEFAULT_PIECE_LENGTH;
    }
    (1u32 << exponent as u32).max(MIN)
}

/// Creates a torrent from a declared file layout and the concatenated file bytes.
///
/// ```
/// use client_core::metainfo::TorrentBuilder;
/// let mut builder = TorrentBuilder::single_file("hello.txt", 5, None).unwrap();
/// builder.update(b"hel");
/// builder.update(b"lo");
/// let torrent = builder.finish().unwrap();
/// assert_eq!(torrent.info.piece_count(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct TorrentBuilder {
    name: String,
    files: Vec<FileEntry>,
    single_file: bool,
    piece_length: u32,
    total_length: u64,
    private: Option<bool>,
    /// Extra `info` keys (create-torrent's `opts.info`, e.g. `source`).
    extra_info: Vec<(Vec<u8>, Value)>,

    /// URLs as given; de-duplicated by `finish`.
    announce: Vec<String>,
    url_list: Vec<String>,
    comment: Option<String>,
    created_by: Option<String>,
    creation_date: Option<i64>,

    hasher: Sha1,
    /// Bytes of the current piece fed to `hasher` so far.
    in_piece: u32,
    pieces: Vec<u8>,
    /// Every byte passed to `update`, including any beyond the declared total.
    received: u64,
    /// False for [`TorrentBuilder::single_file_unsized`]: the length is whatever was fed.
    length_declared: bool,
}

impl TorrentBuilder {
    /// A single-file torrent: `name` is the file name. `piece_length: None` picks
    /// [`default_piece_length`].
    pub fn single_file(
        name: impl Into<String>,
        length: u64,
        piece_length: Option<u32>,
    ) -> Result<Self> {
        let file = FileEntry {
            path: Vec::new(),
            length,
            offset: 0,
        };
        Self::new(name.into(), vec![file], true, piece_length)
    }

    /// A single-file torrent whose length is learnt at the end (an upload streamed without a
    /// declared size). The piece length must be chosen up front; the caller checks afterwards
    /// that it equals [`default_piece_length`] of the final size if it wants create-torrent's
    /// info-hash, and hashes again otherwise.
    pub fn single_file_unsized(name: impl Into<String>, piece_length: u32) -> Result<Self> {
        let mut builder = Self::single_file(name, 0, Some(piece_length))?;
        builder.length_declared = false;
        Ok(builder)
    }

    /// A multi-file torrent: `name` is the directory, `files` are `(path components below it,
    /// length)` in the order their bytes will be fed (create-torrent's order, see
    /// [`TorrentBuilder::from_path`]).
    pub fn multi_file(
        name: impl Into<String>,
        files: impl IntoIterator<Item = (Vec<String>, u64)>,
        piece_length: Option<u32>,
    ) -> Result<Self> {
        let mut entries = Vec::new();
        let mut offset: u64 = 0;
        for (index, (path, length)) in files.into_iter().enumerate() {
            if path.is_empty() {
                return Err(MetainfoError::EmptyPath { file: index });
            }
            for component in &path {
                check_component(component).map_err(|reason| MetainfoError::InvalidPath {
                    file: index,
                    component: component.clone(),
                    reason,
                })?;
            }
            entries.push(FileEntry {
                path,
                length,
                offset,
            });
            offset = offset
                .checked_add(length)
                .ok_or(MetainfoError::LengthOverflow)?;
        }
        if entries.is_empty() {
            return Err(MetainfoError::NoFiles);
        }
        Self::new(name.into(), entries, false, piece_length)
    }

    fn new(
        name: String,
        files: Vec<FileEntry>,
        single_file: bool,
        piece_length: Option<u32>,
    ) -> Result<Self> {
        check_component(&name).map_err(|reason| MetainfoError::InvalidName {
            name: name.clone(),
            reason,
        })?;
        let total_length = files.last().map_or(0, |f| f.offset + f.length);
        let piece_length = piece_length.unwrap_or_else(|| default_piece_length(total_length));
        let piece_length = checked_piece_length(piece_length.into())?;
        let piece_count = needed_pieces(total_length, piece_length)?;
        Ok(Self {
            name,
            files,
            single_file,
            piece_length,
            total_length,
            private: None,
            extra_info: Vec::new(),
            announce: Vec::new(),
            url_list: Vec::new(),
            comment: None,
            created_by: None,
            creation_date: None,
            hasher: Sha1::new(),
            in_piece: 0,
            // Bounded by the declared length, which the caller vouches for; cap the up-front
            // reservation anyway so that a bogus length cannot reserve gigabytes.
            pieces: Vec::with_capacity(usize::try_from(piece_count * 20).unwrap_or(0).min(1 << 20)),
            received: 0,
            length_declared: true,
        })
    }

    /// Writes `private` into `info` (BEP 27). As in create-torrent, `private(false)` writes
    /// `private: 0`, which changes the info-hash; leave it unset for the usual torrent.
    pub fn private(mut self, private: bool) -> Self {
        self.private = Some(private);
        self
    }

    /// Adds a key to `info`, like create-torrent's `opts.info` (e.g. `source` for private
    /// trackers, which changes the info-hash on purpose). The keys this builder writes itself
    /// (`name`, `piece length`, `pieces`, `length`, `files`, `private`) cannot be overridden.
    pub fn info_field(mut self, key: impl AsRef<[u8]>, value: Value) -> Self {
        self.extra_info.push((key.as_ref().to_vec(), value));
        self
    }

    /// Tracker URLs, written as `announce` + one-URL `announce-list` tiers.
    pub fn announce<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.announce.extend(urls.into_iter().map(Into::into));
        self
    }

    /// Web seeds (`url-list`).
    pub fn url_list<S: Into<String>>(mut self, urls: impl IntoIterator<Item = S>) -> Self {
        self.url_list.extend(urls.into_iter().map(Into::into));
        self
    }

    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// e.g. `WebTorrent/0300`, as `client.seed()` writes.
    pub fn created_by(mut self, created_by: impl Into<String>) -> Self {
        self.created_by = Some(created_by.into());
        self
    }

    /// Seconds since the Unix epoch. The builder has no clock so that output stays
    /// deterministic; without this call no date is written.
    pub fn creation_date(mut self, seconds: i64) -> Self {
        self.creation_date = Some(seconds);
        self
    }

    pub fn piece_length(&self) -> u32 {
        self.piece_length
    }

    pub fn total_length(&self) -> u64 {
        self.total_length
    }

    /// Bytes fed so far (for progress).
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Feeds the next bytes of the concatenated files, in any chunking. Bytes beyond the
    /// declared total are counted (so that [`finish`](Self::finish) reports them) but not hashed.
    pub fn update(&mut self, mut data: &[u8]) {
        let hashable = if self.length_declared {
            self.total_length.saturating_sub(self.received)
        } else {
            u64::MAX
        };
        self.received = self.received.saturating_add(data.len() as u64);
        if (data.len() as u64) > hashable {
            // `hashable` is smaller than a slice length here, so it fits usize.
            data = &data[..hashable as usize];
        }
        while !data.is_empty() {
            let room = (self.piece_length - self.in_piece) as usize;
            let (now, rest) = data.split_at(room.min(data.len()));
            self.hasher.update(now);
            self.in_piece += now.len() as u32;
            if self.in_piece == self.piece_length {
                self.pieces.extend_from_slice(&self.hasher.finalize_reset());
                self.in_piece = 0;
            }
            data = rest;
        }
    }

    /// Hashes the short last piece and builds the torrent. Fails if the bytes fed differ from
    /// the declared lengths.
    pub fn finish(mut self) -> Result<Metainfo> {
        if !self.length_declared {
            self.total_length = self.received;
            if let Some(file) = self.files.first_mut() {
                file.length = self.received;
            }
        }
        if self.received != self.total_length {
            return Err(MetainfoError::LengthMismatch {
                declared: self.total_length,
                received: self.received,
            });
        }
        if self.in_piece > 0 {
            self.pieces.extend_from_slice(&self.hasher.finalize_reset());
        }

        // Exactly create-torrent's keys (§5.2) plus any extras; the encoder sorts them.
        const OWN_KEYS: [&[u8]; 6] = [
            b"name",
            b"piece length",
            b"pieces",
            b"length",
            b"files",
            b"private",
        ];
        let mut info: BTreeMap<Vec<u8>, Value> = self
            .extra_info
            .into_iter()
            .filter(|(key, _)| !OWN_KEYS.contains(&key.as_slice()))
            .collect();
        let mut set = |key: &str, value| info.insert(key.as_bytes().to_vec(), value);
        set("name", Value::from(self.name.as_str()));
        set("piece length", Value::from(self.piece_length));
        set("pieces", Value::Bytes(self.pieces));
        if self.single_file {
            set("length", length_value(self.total_length)?);
        } else {
            let files = self
                .files
                .iter()
                .map(|f| {
                    Ok(Value::dict([
                        ("length", length_value(f.length)?),
                        ("path", Value::list(f.path.iter().map(String::as_str))),
                    ]))
                })
                .collect::<Result<Vec<_>>>()?;
            set("files", Value::List(files));
        }
        if let Some(private) = self.private {
            set("private", Value::Int(i64::from(private)));
        }

        let mut torrent = Metainfo::from_info_bytes(Value::Dict(info).encode())?;
        torrent.announce = dedup(self.announce);
        torrent.url_list = dedup(self.url_list);
        torrent.comment = self.comment;
        torrent.created_by = self.created_by;
        torrent.creation_date = self.creation_date;
        Ok(torrent)
    }
}

/// Bencode integers are `i64`; a longer declared length cannot be written.
fn length_value(length: u64) -> Result<Value> {
    i64::try_from(length)
        .map(Value::Int)
        .map_err(|_| MetainfoError::LengthOverflow)
}

fn dedup(urls: Vec<String>) -> Vec<String> {
    let mut list = UrlList::default();
    urls.iter().for_each(|url| list.push(url));
    list.into_vec()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::fs;
    use std::io::{self, Read};
    use std::path::{Path, PathBuf};

    use super::TorrentBuilder;

    impl TorrentBuilder {
        /// Hashes a file or a directory from disk the way create-torrent does (§5.2): the name is
        /// the path's last component; a directory is walked depth-first in bytewise name order,
        /// skipping dot-files and junk files. Returns the builder with every byte fed, ready for
        /// options and [`finish`](TorrentBuilder::finish). Native only: browsers feed `File`
        /// slices to [`update`](TorrentBuilder::update) instead.
        pub fn from_path(path: &Path, piece_length: Option<u32>) -> io::Result<TorrentBuilder> {
            let name = utf8_name(path.file_name(), path)?;
            if fs::metadata(path)?.is_file() {
                let length = fs::metadata(path)?.len();
                let mut builder =
                    TorrentBuilder::single_file(name, length, piece_length).map_err(invalid)?;
                builder.update_from_file(path)?;
                return Ok(builder);
            }

            let mut found = Vec::new();
            walk(path, &mut Vec::new(), &mut found)?;
            let layout = found
                .iter()
                .map(|(_, components, length)| (components.clone(), *length));
            let mut builder =
                TorrentBuilder::multi_file(name, layout, piece_length).map_err(invalid)?;
            for (file, _, _) in &found {
                builder.update_from_file(file)?;
            }
            Ok(builder)
        }

        /// Feeds the whole of the file at `path`, in order, as [`update`](Self::update) would.
        /// Native only, and blocking: run it off an async event loop.
        pub fn update_from_file(&mut self, path: &Path) -> io::Result<()> {
            let mut file = fs::File::open(path)?;
            let mut buf = vec![0u8; 256 << 10];
            loop {
                match file.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => self.update(&buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }

    fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    fn utf8_name(name: Option<&std::ffi::OsStr>, path: &Path) -> io::Result<String> {
        name.and_then(|n| n.to_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} has no UTF-8 file name", path.display()),
                )
            })
    }

    /// Depth-first, entries in bytewise order: what Node's `readdir` (libuv's scandir sorts
    /// with `strcmp`) gives create-torrent on Unix.
    fn walk(
        dir: &Path,
        prefix: &mut Vec<String>,
        out: &mut Vec<(PathBuf, Vec<String>, u64)>,
    ) -> io::Result<()> {
        let mut entries = fs::read_dir(dir)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()?;
        entries.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        for entry in entries {
            let path = dir.join(&entry);
            let name = utf8_name(Some(&entry), &path)?;
            if name.starts_with('.') || is_junk(&name) {
                continue;
            }
            let meta = fs::metadata(&path)?;
            prefix.push(name);
            if meta.is_dir() {
                walk(&path, prefix, out)?;
            } else if meta.is_file() {
                out.push((path, prefix.clone(), meta.len()));
            }
            prefix.pop();
        }
        Ok(())
    }

    /// The non-dot names of the `junk` package's list (dot-files are skipped already).
    fn is_junk(name: &str) -> bool {
        matches!(
            name,
            "npm-debug.log"
                | "Icon\r"
                | "__MACOSX"
                | "Thumbs.db"
                | "ehthumbs.db"
                | "Desktop.ini"
                | "desktop.ini"
        ) || name.ends_with('~')
            || name.ends_with("@eaDir")
            || name.contains(".Trashes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_length_table() {
        // Thresholds from protocol §5.1 (computed against the JS expression).
        let table = [
            (0, 16 << 10),
            (1023, 16 << 10),
            (23_726_566, 16 << 10),
            (23_726_567, 32 << 10),
            (47_453_132, 32 << 10),
            (47_453_133, 64 << 10),
            (94_906_266, 128 << 10),
            (189_812_532, 256 << 10),
            (379_625_063, 512 << 10),
            (759_250_125, 1 << 20),
            (1_518_500_250, 2 << 20),
            (3_037_000_499, 2 << 20),
            (3_037_000_500, 4 << 20),
            (u64::MAX, 4 << 20),
        ];
        for (total, expected) in table {
            assert_eq!(default_piece_length(total), expected, "total {total}");
        }
    }

    #[test]
    fn chunking_does_not_change_the_hash() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = {
            let mut b = TorrentBuilder::single_file("d", data.len() as u64, Some(16384)).unwrap();
            b.update(&data);
            b.finish().unwrap()
        };
        for chunk in [1, 7, 16383, 16384, 16385, 99_999] {
            let mut b = TorrentBuilder::single_file("d", data.len() as u64, Some(16384)).unwrap();
            data.chunks(chunk).for_each(|c| b.update(c));
            assert_eq!(b.finish().unwrap(), whole, "chunk {chunk}");
        }
        assert_eq!(whole.info.piece_count(), 7);
        assert_eq!(
            whole.info.pieces[0],
            <[u8; 20]>::from(Sha1::digest(&data[..16384]))
        );
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let mut b = TorrentBuilder::single_file("d", 3, None).unwrap();
        b.update(b"ab");
        assert_eq!(
            b.clone().finish().unwrap_err(),
            MetainfoError::LengthMismatch {
                declared: 3,
                received: 2
            }
        );
        b.update(b"cd");
        assert_eq!(
            b.finish().unwrap_err(),
            MetainfoError::LengthMismatch {
                declared: 3,
                received: 4
            }
        );
    }

    #[test]
    fn options_and_validation() {
        let mut b = TorrentBuilder::multi_file(
            "dir",
            [
                (vec!["a".to_owned()], 1),
                (vec!["b".to_owned(), "c".to_owned()], 1),
            ],
            None,
        )
        .unwrap()
        .private(true)
        .announce(["wss://t", "wss://t", ""])
        .url_list(["https://s/"])
        .creation_date(1)
        .created_by("Shoal");
        b.update(b"xy");
        let m = b.finish().unwrap();
        assert!(m.info.private);
        assert_eq!(m.announce, ["wss://t"]);
        assert_eq!(m.info.files[1].path, ["b", "c"]);
        assert_eq!(Metainfo::parse(&m.to_torrent_bytes()).unwrap(), m);

        assert!(TorrentBuilder::multi_file("d", [(vec!["..".to_owned()], 1)], None).is_err());
        assert!(TorrentBuilder::multi_file("d", [], None).is_err());
        assert!(TorrentBuilder::single_file("a/b", 1, None).is_err());
        assert!(TorrentBuilder::single_file("a", 1, Some(0)).is_err());
        assert!(TorrentBuilder::single_file("a", u64::MAX, Some(1)).is_err());
    }

    #[test]
    fn empty_content_has_no_pieces() {
        let m = TorrentBuilder::single_file("e", 0, None)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(m.info.piece_count(), 0);
        assert_eq!(m.info.piece_size(0), 0);
    }
}

#[cfg(test)]
mod unsized_tests {
    use super::*;

    #[test]
    fn unsized_builder_matches_the_sized_one() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        let mut sized =
            TorrentBuilder::single_file("a.bin", data.len() as u64, Some(16384)).unwrap();
        let mut streamed = TorrentBuilder::single_file_unsized("a.bin", 16384).unwrap();
        for chunk in data.chunks(999) {
            sized.update(chunk);
            streamed.update(chunk);
        }
        let (a, b) = (sized.finish().unwrap(), streamed.finish().unwrap());
        assert_eq!(a.info_hash, b.info_hash);
        assert_eq!(b.info.total_length, 100_000);
    }
}
