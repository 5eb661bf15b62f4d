//! The video index: rows of the `videos` table, the queries the API needs (list, get, search,
//! update, delete), and the JSON shape the API answers with ([`VideoJson`], after PeerTube's).
//!
//! A row is written only once its file is complete and in place (see `upload`), so every row
//! the index returns can be watched.

use anyhow::Context;
use client_core::magnet::Magnet;
use client_core::metainfo::Metainfo;
use client_core::InfoHash;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// One stored video or audio file, as in the database.
#[derive(Debug, Clone)]
pub struct Video {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub duration: Option<f64>,
    pub mime_type: String,
    pub size: u64,
    pub info_hash: InfoHash,
    pub torrent_info: Vec<u8>,
    pub file_name: String,
    pub media_path: String,
    pub thumbnail: Option<String>,
    pub processing: String,
    pub views: i64,
    pub origin_pod: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// What an insert needs; the database assigns the id.
pub struct NewVideo {
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub duration: Option<f64>,
    pub mime_type: String,
    pub size: u64,
    pub info_hash: InfoHash,
    pub torrent_info: Vec<u8>,
    pub file_name: String,
    pub media_path: String,
    pub thumbnail: Option<String>,
    pub processing: String,
}

const COLUMNS: &str = "id, uuid, name, description, tags, duration, mime_type, size, info_hash, \
    torrent_info, file_name, media_path, thumbnail, processing, views, origin_pod, created_at, updated_at";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Video> {
    let info_hash: String = row.get(8)?;
    let tags: String = row.get(4)?;
    Ok(Video {
        id: row.get(0)?,
        uuid: row.get(1)?,
        name: row.get(2)?,
        description: row.get(3)?,
        tags: split_tags(&tags),
        duration: row.get(5)?,
        mime_type: row.get(6)?,
        size: row.get::<_, i64>(7)? as u64,
        info_hash: InfoHash::from_hex(&info_hash).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, Box::new(e))
        })?,
        torrent_info: row.get(9)?,
        file_name: row.get(10)?,
        media_path: row.get(11)?,
        thumbnail: row.get(12)?,
        processing: row.get(13)?,
        views: row.get(14)?,
        origin_pod: row.get(15)?,
        created_at: row.get(16)?,
        updated_at: row.get(17)?,
    })
}

fn split_tags(tags: &str) -> Vec<String> {
    tags.split_whitespace().map(str::to_owned).collect()
}

/// Tags as people type them ("Nature, Birds  spring") → lowercase words, de-duplicated, at most
/// 10 of at most 30 characters each.
pub fn normalize_tags(input: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for tag in input.split(|c: char| c == ',' || c.is_whitespace()) {
        let tag: String = tag.trim().to_lowercase().chars().take(30).collect();
        if !tag.is_empty() && !tags.contains(&tag) && tags.len() < 10 {
            tags.push(tag);
        }
    }
    tags
}

/// Sort orders the list endpoint accepts (PeerTube spelling; `-` means descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    Oldest,
    Name,
    MostViewed,
}

impl Sort {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        Ok(match s.unwrap_or("-createdAt") {
            "-createdAt" | "-publishedAt" => Sort::Newest,
            "createdAt" | "publishedAt" => Sort::Oldest,
            "name" => Sort::Name,
            "-views" | "-trending" => Sort::MostViewed,
            other => {
                return Err(format!(
                    "unknown sort {other:?}: use -createdAt, createdAt, name or -views"
                ))
            }
        })
    }

    fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "created_at DESC, id DESC",
            Sort::Oldest => "created_at ASC, id ASC",
            Sort::Name => "name COLLATE NOCASE ASC, id ASC",
            Sort::MostViewed => "views DESC, created_at DESC",
        }
    }
}

pub fn insert(conn: &Connection, new: &NewVideo) -> anyhow::Result<i64> {
    let now = now_rfc3339();
    conn.execute(
        "INSERT INTO videos (uuid, name, description, tags, duration, mime_type, size, info_hash, \
         torrent_info, file_name, media_path, thumbnail, processing, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14)",
        params![
            new.uuid,
            new.name,
            new.description,
            new.tags.join(" "),
            new.duration,
            new.mime_type,
            new.size as i64,
            new.info_hash.to_hex(),
            new.torrent_info,
            new.file_name,
            new.media_path,
            new.thumbnail,
            new.processing,
            now,
        ],
    )
    .context("cannot insert the video")?;
    Ok(conn.last_insert_rowid())
}

/// Finds a video by numeric id or by uuid (the API accepts both, as PeerTube does).
pub fn get(conn: &Connection, id_or_uuid: &str) -> anyhow::Result<Option<Video>> {
    let sql = if id_or_uuid.bytes().all(|b| b.is_ascii_digit()) {
        format!("SELECT {COLUMNS} FROM videos WHERE id = ?1")
    } else {
        format!("SELECT {COLUMNS} FROM videos WHERE uuid = ?1")
    };
    Ok(conn.query_row(&sql, [id_or_uuid], from_row).optional()?)
}

pub fn get_by_info_hash(conn: &Connection, info_hash: &InfoHash) -> anyhow::Result<Option<Video>> {
    let sql = format!("SELECT {COLUMNS} FROM videos WHERE info_hash = ?1");
    Ok(conn
        .query_row(&sql, [info_hash.to_hex()], from_row)
        .optional()?)
}

pub fn all(conn: &Connection) -> anyhow::Result<Vec<Video>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM videos"))?;
    let rows = stmt.query_map([], from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Filters shared by list and search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MediaFilter {
    #[default]
    Any,
    Video,
    Audio,
}

impl MediaFilter {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("") {
            "" | "all" => Ok(MediaFilter::Any),
            "video" => Ok(MediaFilter::Video),
            "audio" => Ok(MediaFilter::Audio),
            other => Err(format!("unknown media type {other:?}: use video or audio")),
        }
    }

    fn clause(self) -> &'static str {
        match self {
            MediaFilter::Any => "1",
            MediaFilter::Video => "mime_type NOT LIKE 'audio/%'",
            MediaFilter::Audio => "mime_type LIKE 'audio/%'",
        }
    }
}

/// A page of videos and the total count.
pub fn list(
    conn: &Connection,
    start: u32,
    count: u32,
    sort: Sort,
    filter: MediaFilter,
) -> anyhow::Result<(u64, Vec<Video>)> {
    let total: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM videos WHERE {}", filter.clause()),
        [],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM videos WHERE {} ORDER BY {} LIMIT ?1 OFFSET ?2",
        filter.clause(),
        sort.order_by()
    ))?;
    let rows = stmt.query_map(params![count, start], from_row)?;
    Ok((total as u64, rows.collect::<Result<_, _>>()?))
}

/// Turns what a person typed into an FTS5 query: each word quoted (so FTS syntax characters are
/// literal) and prefix-matched (so results appear while typing). `None` when nothing is left.
pub fn fts_query(input: &str) -> Option<String> {
    let words: Vec<String> = input
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .take(12)
        .map(|w| format!("\"{}\"*", w.to_lowercase()))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Full-text search, best match first (bm25 with the name weighted above tags and description).
pub fn search(
    conn: &Connection,
    input: &str,
    start: u32,
    count: u32,
    filter: MediaFilter,
) -> anyhow::Result<(u64, Vec<Video>)> {
    let Some(query) = fts_query(input) else {
        return Ok((0, Vec::new()));
    };
    let total: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM videos_fts JOIN videos ON videos.id = videos_fts.rowid \
             WHERE videos_fts MATCH ?1 AND {}",
            filter.clause()
        ),
        [&query],
        |r| r.get(0),
    )?;
    let columns = COLUMNS
        .split(", ")
        .map(|c| format!("videos.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT {columns} FROM videos_fts JOIN videos ON videos.id = videos_fts.rowid \
         WHERE videos_fts MATCH ?1 AND {} \
         ORDER BY bm25(videos_fts, 10.0, 1.0, 4.0), videos.created_at DESC LIMIT ?2 OFFSET ?3",
        filter.clause()
    ))?;
    let rows = stmt.query_map(params![query, count, start], from_row)?;
    Ok((total as u64, rows.collect::<Result<_, _>>()?))
}

/// Changes the fields people may edit; `None` leaves a field as it is.
pub fn update(
    conn: &Connection,
    id: i64,
    name: Option<&str>,
    description: Option<&str>,
    tags: Option<&[String]>,
) -> anyhow::Result<()> {
    conn.execute(
        "UPDATE videos SET name = COALESCE(?2, name), description = COALESCE(?3, description), \
         tags = COALESCE(?4, tags), updated_at = ?5 WHERE id = ?1",
        params![
            id,
            name,
            description,
            tags.map(|t| t.join(" ")),
            now_rfc3339()
        ],
    )?;
    Ok(())
}

pub fn delete(conn: &Connection, id: i64) -> anyhow::Result<()> {
    conn.execute("DELETE FROM videos WHERE id = ?1", [id])?;
    Ok(())
}

pub fn add_view(conn: &Connection, id: i64) -> anyhow::Result<()> {
    conn.execute("UPDATE videos SET views = views + 1 WHERE id = ?1", [id])?;
    Ok(())
}

/// The pod's public addresses, from which every URL in a [`VideoJson`] is built.
#[derive(Debug, Clone)]
pub struct PodUrls {
    /// e.g. `http://127.0.0.1:9000`, no trailing slash.
    pub base: String,
}

impl PodUrls {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    pub fn host(&self) -> &str {
        self.base
            .split_once("://")
            .map(|(_, rest)| rest)
            .unwrap_or(&self.base)
    }

    /// The WebSocket tracker, `ws://` or `wss://` as the pod's own scheme.
    pub fn ws_tracker(&self) -> String {
        let scheme = if self.base.starts_with("https://") {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}{}", self.host(), crate::tracker::SOCKET_PATH)
    }

    pub fn http_tracker(&self) -> String {
        format!("{}{}", self.base, crate::tracker::ANNOUNCE_PATH)
    }

    pub fn webseed(&self, info_hash: &InfoHash, file_name: &str) -> String {
        format!(
            "{}/static/webseed/{}/{}",
            self.base,
            info_hash.to_hex(),
            encode_path_segment(file_name)
        )
    }

    pub fn torrent(&self, uuid: &str) -> String {
        format!("{}/static/torrents/{uuid}.torrent", self.base)
    }

    /// The `.torrent` as served: the stored info dict plus this pod's trackers and WebSeed,
    /// which live outside the info dict so that the info-hash stays create-torrent's.
    pub fn torrent_file(&self, video: &Video) -> anyhow::Result<Metainfo> {
        let mut torrent = Metainfo::from_info_bytes(video.torrent_info.clone())?;
        // HTTP first: clients that read only `announce`, or take tiers in order (aria2), can
        // use it; WebTorrent announces to every tracker listed whatever the order.
        torrent.announce = vec![self.http_tracker(), self.ws_tracker()];
        torrent.url_list = vec![self.webseed(&video.info_hash, &video.file_name)];
        torrent.created_by = Some(format!("Shoal/{}", env!("CARGO_PKG_VERSION")));
        Ok(torrent)
    }

    pub fn magnet(&self, video: &Video) -> String {
        let mut magnet = Magnet::new(video.info_hash);
        magnet.name = Some(video.file_name.clone());
        magnet.trackers = vec![self.ws_tracker(), self.http_tracker()];
        magnet.web_seeds = vec![self.webseed(&video.info_hash, &video.file_name)];
        magnet.exact_sources = vec![self.torrent(&video.uuid)];
        magnet.to_string()
    }
}

/// Percent-encodes one URL path segment (RFC 3986 unreserved characters stay as they are).
pub fn encode_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRef {
    pub host: String,
    pub url: String,
    pub local: bool,
}

/// A video as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoJson {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub duration: Option<f64>,
    pub mime_type: String,
    pub is_audio: bool,
    pub size: u64,
    pub info_hash: String,
    pub piece_length: u32,
    pub magnet_uri: String,
    pub torrent_url: String,
    pub file_url: String,
    pub thumbnail_url: Option<String>,
    pub watch_url: String,
    pub embed_url: String,
    pub processing: String,
    pub views: i64,
    pub created_at: String,
    pub updated_at: String,
    pub pod: PodRef,
}

impl VideoJson {
    pub fn new(video: &Video, urls: &PodUrls) -> Self {
        let piece_length = Metainfo::from_info_bytes(video.torrent_info.clone())
            .map(|m| m.info.piece_length)
            .unwrap_or(0);
        Self {
            id: video.id,
            uuid: video.uuid.clone(),
            name: video.name.clone(),
            description: video.description.clone(),
            tags: video.tags.clone(),
            duration: video.duration,
            is_audio: video.mime_type.starts_with("audio/"),
            mime_type: video.mime_type.clone(),
            size: video.size,
            info_hash: video.info_hash.to_hex(),
            piece_length,
            magnet_uri: urls.magnet(video),
            torrent_url: urls.torrent(&video.uuid),
            file_url: urls.webseed(&video.info_hash, &video.file_name),
            thumbnail_url: video
                .thumbnail
                .as_ref()
                .map(|t| format!("{}/static/thumbnails/{t}", urls.base)),
            watch_url: format!("{}/w/{}", urls.base, video.uuid),
            embed_url: format!("{}/embed/{}", urls.base, video.uuid),
            processing: video.processing.clone(),
            views: video.views,
            created_at: video.created_at.clone(),
            updated_at: video.updated_at.clone(),
            pod: PodRef {
                host: urls.host().to_owned(),
                url: urls.base.clone(),
                local: video.origin_pod.is_none(),
            },
        }
    }
}

/// Now as RFC 3339 UTC with seconds (`2026-11-22T00:41:07Z`), which sorts as text.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the Unix epoch as RFC 3339 UTC (days-to-civil conversion, proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_307_267), "2026-11-22T00:27:47Z");
    }

    #[test]
    fn tags_and_queries() {
        assert_eq!(
            normalize_tags("Nature, Birds  nature spring"),
            ["nature", "birds", "spring"]
        );
        assert_eq!(fts_query("big buck"), Some("\"big\"* \"buck\"*".into()));
        assert_eq!(fts_query("\"); DROP"), Some("\"drop\"*".into()));
        assert_eq!(fts_query("  -- "), None);
    }

    #[test]
    fn urls() {
        let urls = PodUrls::new("https://pod.example/");
        assert_eq!(urls.ws_tracker(), "wss://pod.example/tracker/socket");
        assert_eq!(urls.http_tracker(), "https://pod.example/tracker/announce");
        assert_eq!(encode_path_segment("a b#?.mp4"), "a%20b%23%3F.mp4");
    }
}
