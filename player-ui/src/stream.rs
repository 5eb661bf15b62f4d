//! Playback through client-core: one [`Stream`] is one torrent session feeding one media
//! element, plus the numbers the P2P panel shows. The app uses client-core's Rust API directly
//! (the same pieces its JavaScript API wraps), so the page ships one engine, not two.

use std::time::Duration;

use client_core::engine::TorrentSource;
use client_core::metainfo::Metainfo;
use client_core::web::player::{MediaAttachment, Player};
use client_core::web::session::{Options, Session};
use client_core::web::tracker::Trackers;
use client_core::web::util;
use client_core::PeerId;
use leptos::prelude::set_timeout;
use web_sys::HtmlMediaElement;

use crate::api::{self, Video};

thread_local! {
    // One socket per tracker and one peer id for the whole page, as WebTorrent clients do:
    // a viewer who opens several videos in a row reuses its tracker connections.
    static TRACKERS: Trackers = Trackers::default();
    static PEER_ID: PeerId = PeerId::generate(&peer_id_prefix(), util::random_bytes::<12>());
}

/// `-SH0001-` for version 0.1.x: the Azureus-style prefix the JS API uses too.
fn peer_id_prefix() -> [u8; 8] {
    let digits: String = client_core::VERSION.split('.').take(2).collect();
    let prefix = format!("-SH{digits:0>4}-");
    let mut out = *b"-SH0000-";
    if prefix.len() == 8 {
        out.copy_from_slice(prefix.as_bytes());
    }
    out
}

/// What one piece of the file is doing, for the piece map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PieceState {
    Missing,
    Downloading,
    Held,
}

/// A moment of the stream, copied out of the engine for the UI.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub peers: u32,
    pub down_rate: u64,
    pub up_rate: u64,
    pub from_peers: u64,
    pub from_pod: u64,
    pub uploaded: u64,
    pub pieces: Vec<PieceState>,
}

impl Snapshot {
    pub fn held(&self) -> usize {
        self.pieces
            .iter()
            .filter(|p| **p == PieceState::Held)
            .count()
    }
}

/// How long a stopped player's listeners stay alive (see [`Stream`]'s `Drop`).
const PLAYER_LINGER: Duration = Duration::from_secs(5);

/// A running playback; dropping it stops the player and leaves the swarm. Give each stream its
/// own media element: a stopped player's listeners stay on the element it played in.
pub struct Stream {
    session: Session,
    player: Option<Player>,
}

impl Stream {
    /// Fetches the video's torrent, joins its swarm (or only its WebSeed when `p2p` is off) and
    /// streams into `element`.
    pub async fn start(
        video: &Video,
        element: HtmlMediaElement,
        p2p: bool,
    ) -> Result<Stream, String> {
        // The element is made ready while the torrent is fetched (see `MediaAttachment`).
        let media = MediaAttachment::new(element)
            .map_err(|e| format!("this browser cannot play it: {}", util::describe(&e)))?;
        let meta = match api::get_torrent(&video.torrent_url)
            .await
            .and_then(|bytes| {
                Metainfo::parse(&bytes).map_err(|e| format!("the torrent file is not valid: {e}"))
            }) {
            Ok(meta) => meta,
            Err(e) => {
                media.detach();
                return Err(e);
            }
        };
        let options = Options {
            p2p,
            playing: true,
            ..Options::default()
        };
        let session = TRACKERS.with(|trackers| {
            PEER_ID.with(|peer_id| {
                Session::start(
                    TorrentSource::Torrent(Box::new(meta)),
                    trackers,
                    *peer_id,
                    options,
                )
            })
        });
        let player = Player::attach_prepared(session.clone(), media);
        Ok(Stream {
            session,
            player: Some(player),
        })
    }

    pub fn snapshot(&self) -> Snapshot {
        let stats = self.session.stats();
        let pieces = self.session.peek(|engine| {
            (0..stats.pieces_total)
                .map(|i| {
                    if engine.has_piece(i) {
                        PieceState::Held
                    } else if engine.is_downloading(i) {
                        PieceState::Downloading
                    } else {
                        PieceState::Missing
                    }
                })
                .collect()
        });
        Snapshot {
            peers: stats.peers_connected,
            down_rate: stats.down_rate,
            up_rate: stats.up_rate,
            from_peers: stats.downloaded_from_peers,
            from_pod: stats.downloaded_from_webseeds,
            uploaded: stats.uploaded,
            pieces,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.session.destroy();
        if let Some(player) = self.player.take() {
            player.stop();
            // client-core's Player::stop leaves its listeners on the element, and an element
            // leaving the page still fires an event or two (it pauses: `pause`, `timeupdate`).
            // Freeing the listeners' closures at once would make those events throw; a stopped
            // player ignores them, so it is kept that much longer.
            set_timeout(move || drop(player), PLAYER_LINGER);
        }
    }
}
