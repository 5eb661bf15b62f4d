//! The JavaScript API for web developers (documented in the README, example in
//! `www/client-example.html`):
//!
//! ```js
//! import init, { Client } from '/client/client_core.js';
//! await init();
//! const client = new Client({ maxConns: 20 });
//! const torrent = await client.add(magnetOrTorrentUrlOrInfoHashOrBytes);
//! torrent.on('done', () => console.log('all pieces verified'));
//! torrent.streamTo(document.querySelector('video'));
//! // or both at once, the element made ready while the torrent is fetched:
//! const played = await client.stream(torrentUrl, document.querySelector('video'));
//! console.log(torrent.stats());
//! ```
//!
//! Errors reject the promise (or throw) with an `Error` whose message says what went wrong; a
//! torrent that cannot progress says so with an `error` event, never by stalling silently.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::player::{MediaAttachment, Player};
use super::session::{Options, Session};
use super::tracker::Trackers;
use super::util::{self, js_error};
use crate::engine::TorrentSource;
use crate::magnet::Magnet;
use crate::metainfo::{Metainfo, TorrentBuilder};
use crate::{InfoHash, PeerId};

/// Largest `.torrent` file fetched (a 4 GiB file with 16 KiB pieces has a 5 MiB torrent).
const MAX_TORRENT_FILE: usize = 16 << 20;

/// A WebTorrent-compatible client: one peer id, one socket per tracker, many torrents.
#[wasm_bindgen]
pub struct Client {
    inner: Rc<ClientInner>,
}

struct ClientInner {
    trackers: Trackers,
    peer_id: PeerId,
    options: Options,
    torrents: RefCell<Vec<Session>>,
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    if obj.is_object() {
        Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn strings(value: &JsValue) -> Vec<String> {
    js_sys::Array::from(value)
        .iter()
        .filter_map(|v| v.as_string())
        .collect()
}

/// Reads the options object shared by `new Client(opts)` and `client.add(id, opts)`.
fn options(base: &Options, js: &JsValue) -> Options {
    let mut o = base.clone();
    if let Some(n) = get(js, "maxConns").as_f64() {
        o.max_conns = (n.max(0.0) as usize).min(200);
    }
    if let Some(b) = get(js, "p2p").as_bool() {
        o.p2p = b;
    }
    if let Some(b) = get(js, "webSeeds").as_bool() {
        o.webseeds = b;
    }
    let ice = get(js, "iceServers");
    if ice.is_object() {
        o.ice_servers = ice;
    }
    let announce = get(js, "announce");
    if announce.is_object() {
        o.extra_trackers = strings(&announce);
    }
    if let Some(mib) = get(js, "memoryBudgetMiB").as_f64() {
        o.memory_budget = Some((mib.max(16.0) as u64) << 20);
    }
    o
}

#[wasm_bindgen]
impl Client {
    /// `new Client({ maxConns, p2p, webSeeds, iceServers, announce, memoryBudgetMiB })`; every
    /// option is optional.
    #[wasm_bindgen(constructor)]
    pub fn new(opts: JsValue) -> Client {
        let version: String = crate::VERSION
            .split('.')
            .take(2)
            .collect::<Vec<_>>()
            .join("");
        let prefix = format!("-SH{:0>4}-", version);
        let mut p = [0u8; 8];
        p.copy_from_slice(&prefix.as_bytes()[..8]);
        Client {
            inner: Rc::new(ClientInner {
                trackers: Trackers::default(),
                peer_id: PeerId::generate(&p, util::random_bytes::<12>()),
                options: options(&Options::default(), &opts),
                torrents: RefCell::new(Vec::new()),
            }),
        }
    }

    /// This client's peer id (hex).
    #[wasm_bindgen(getter, js_name = peerId)]
    pub fn peer_id(&self) -> String {
        self.inner.peer_id.to_hex()
    }

    /// Adds a torrent from a magnet link, an info-hash (hex), the URL of a `.torrent` file, or
    /// its bytes (`Uint8Array`/`ArrayBuffer`). Resolves with a `Torrent` once it is running.
    pub fn add(&self, torrent_id: JsValue, opts: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            inner.add(torrent_id, opts, false).await.map(JsValue::from)
        })
    }

    /// Adds a torrent (as `add`) and plays its file in a `<video>` or `<audio>` element (as
    /// `torrent.streamTo`): the one call a player page needs. The element is made ready while
    /// the `.torrent` is fetched, so the first frame comes sooner than with `add` then
    /// `streamTo`. Resolves with the `Torrent`; when the torrent cannot be added, rejects and
    /// leaves the element empty.
    pub fn stream(
        &self,
        torrent_id: JsValue,
        element: web_sys::HtmlMediaElement,
        opts: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let media = MediaAttachment::new(element)?;
            match inner.add(torrent_id, opts, true).await {
                Ok(torrent) => {
                    let session = torrent.session.clone();
                    torrent.play(|| Ok(Player::attach_prepared(session, media)))?;
                    Ok(JsValue::from(torrent))
                }
                Err(e) => {
                    media.detach();
                    Err(e)
                }
            }
        })
    }

    /// Seeds a local `File`: hashes it in the browser into a torrent (create-torrent's info-hash
    /// for the same file and piece length) and serves it to peers. `opts.announce` lists the
    /// trackers to put in the torrent. Resolves with a `Torrent`.
    pub fn seed(&self, file: web_sys::File, opts: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            inner.seed(file, opts).await.map(JsValue::from)
        })
    }

    /// Stops every torrent.
    pub fn destroy(&self) {
        for session in self.inner.torrents.borrow_mut().drain(..) {
            session.destroy();
        }
    }
}

impl ClientInner {
    /// `playing`: a player streams the file from its beginning (see `Options::playing`).
    async fn add(
        &self,
        torrent_id: JsValue,
        opts: JsValue,
        playing: bool,
    ) -> Result<Torrent, JsValue> {
        let source = resolve_source(&torrent_id).await?;
        let info_hash = match &source {
            TorrentSource::Torrent(m) => m.info_hash,
            TorrentSource::Magnet(m) => m.info_hash,
        };
        if let Some(existing) = self
            .torrents
            .borrow()
            .iter()
            .find(|s| s.info_hash() == info_hash)
        {
            return Ok(Torrent::new(existing.clone()));
        }
        let session = Session::start(
            source,
            &self.trackers,
            self.peer_id,
            Options {
                playing,
                ..options(&self.options, &opts)
            },
        );
        self.torrents.borrow_mut().push(session.clone());
        Ok(Torrent::new(session))
    }

    async fn seed(&self, file: web_sys::File, opts: JsValue) -> Result<Torrent, JsValue> {
        let size = file.size() as u64;
        let trackers = strings(&get(&opts, "announce"));
        let mut builder = TorrentBuilder::single_file(file.name(), size, None)
            .map_err(|e| js_error(format!("cannot seed this file: {e}")))?;
        builder = builder.announce(trackers);
        let piece_length = builder.piece_length() as u64;
        let mut pieces = Vec::new();
        let mut offset = 0u64;
        while offset < size {
            let end = (offset + piece_length).min(size);
            let bytes = read_slice(&file, offset, end).await?;
            builder.update(&bytes);
            pieces.push(bytes);
            offset = end;
        }
        let torrent = builder
            .finish()
            .map_err(|e| js_error(format!("cannot seed this file: {e}")))?;
        let session = Session::start(
            TorrentSource::Torrent(Box::new(torrent)),
            &self.trackers,
            self.peer_id,
            options(&self.options, &opts),
        );
        let now = util::now();
        let result = session.with_engine(|engine| {
            pieces
                .into_iter()
                .enumerate()
                .try_for_each(|(i, bytes)| engine.add_local_piece(i as u32, bytes, now))
        });
        if let Err(e) = result {
            session.destroy();
            return Err(js_error(format!("cannot seed this file: {e}")));
        }
        self.torrents.borrow_mut().push(session.clone());
        Ok(Torrent::new(session))
    }
}

async fn read_slice(file: &web_sys::File, start: u64, end: u64) -> Result<Vec<u8>, JsValue> {
    let blob = file.slice_with_f64_and_f64(start as f64, end as f64)?;
    let buffer = JsFuture::from(blob.array_buffer()).await?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// Turns what the page passed into something the engine can start from.
async fn resolve_source(id: &JsValue) -> Result<TorrentSource, JsValue> {
    // A page can start fetching the .torrent in its <head> (with its own headers or credentials)
    // and hand over the promise: the fetch runs while the client's wasm loads. browser-bench saw
    // the first WebSeed request leave 1-3 ms sooner than after the client's own fetch of a
    // preloaded .torrent, within the spread between runs.
    let id = match id.dyn_ref::<Promise>() {
        Some(promise) => JsFuture::from(promise.clone())
            .await
            .map_err(|e| js_error(format!("cannot fetch the .torrent: {}", util::describe(&e))))?,
        None => id.clone(),
    };
    if let Some(response) = id.dyn_ref::<web_sys::Response>() {
        let url = response.url();
        let what = if url.is_empty() { "the .torrent" } else { &url };
        let torrent = torrent_from_response(response, what).await?;
        return Ok(TorrentSource::Torrent(Box::new(torrent)));
    }
    if let Some(bytes) = id
        .dyn_ref::<Uint8Array>()
        .map(Uint8Array::to_vec)
        .or_else(|| {
            id.dyn_ref::<js_sys::ArrayBuffer>()
                .map(|b| Uint8Array::new(b).to_vec())
        })
    {
        let torrent = Metainfo::parse(&bytes)
            .map_err(|e| js_error(format!("not a valid .torrent file: {e}")))?;
        return Ok(TorrentSource::Torrent(Box::new(torrent)));
    }
    let Some(text) = id.as_string() else {
        return Err(js_error(
            "add() takes a magnet link, an info-hash, a .torrent URL, the .torrent's bytes or a fetch Response (or a Promise of one)",
        ));
    };
    let text = text.trim();
    if text.starts_with("magnet:") {
        let magnet =
            Magnet::parse(text).map_err(|e| js_error(format!("not a valid magnet link: {e}")))?;
        // `xs=` names the .torrent: fetching it beats waiting for peers' ut_metadata (§4.1).
        for url in magnet
            .exact_sources
            .iter()
            .filter(|u| u.starts_with("http"))
        {
            match fetch_torrent(url).await {
                Ok(mut torrent) if torrent.info_hash == magnet.info_hash => {
                    merge(&mut torrent.announce, &magnet.trackers);
                    merge(&mut torrent.url_list, &magnet.web_seeds);
                    return Ok(TorrentSource::Torrent(Box::new(torrent)));
                }
                Ok(_) => util::warn("the magnet's xs= torrent has another info-hash; ignored"),
                Err(e) => util::warn(&format!(
                    "cannot fetch the magnet's xs= torrent: {}",
                    util::describe(&e)
                )),
            }
        }
        return Ok(TorrentSource::Magnet(magnet));
    }
    if let Ok(hash) = InfoHash::from_hex(text) {
        return Ok(TorrentSource::Magnet(Magnet::new(hash)));
    }
    if text.starts_with("http://") || text.starts_with("https://") || text.starts_with('/') {
        let torrent = fetch_torrent(text).await?;
        return Ok(TorrentSource::Torrent(Box::new(torrent)));
    }
    Err(js_error(format!(
        "{text:?} is neither a magnet link, an info-hash nor a .torrent URL"
    )))
}

fn merge(into: &mut Vec<String>, more: &[String]) {
    for url in more {
        if !into.contains(url) {
            into.push(url.clone());
        }
    }
}

async fn fetch_torrent(url: &str) -> Result<Metainfo, JsValue> {
    let window = web_sys::window().ok_or_else(|| js_error("no window"))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| js_error(format!("cannot fetch {url}: {}", util::describe(&e))))?
        .dyn_into()?;
    torrent_from_response(&response, url).await
}

/// Reads and parses the `.torrent` a fetch answered with; `what` names it in errors.
async fn torrent_from_response(
    response: &web_sys::Response,
    what: &str,
) -> Result<Metainfo, JsValue> {
    if !response.ok() {
        return Err(js_error(format!(
            "{what} answered HTTP {}",
            response.status()
        )));
    }
    let buffer = JsFuture::from(response.array_buffer()?)
        .await
        .map_err(|e| js_error(format!("cannot read {what}: {}", util::describe(&e))))?;
    let bytes = Uint8Array::new(&buffer);
    if bytes.length() as usize > MAX_TORRENT_FILE {
        return Err(js_error(format!(
            "{what} is too large to be a .torrent file"
        )));
    }
    Metainfo::parse(&bytes.to_vec())
        .map_err(|e| js_error(format!("{what} is not a valid .torrent: {e}")))
}

/// One torrent of a [`Client`].
#[wasm_bindgen]
pub struct Torrent {
    session: Session,
    player: Rc<RefCell<Option<Player>>>,
}

impl Torrent {
    fn new(session: Session) -> Self {
        Self {
            session,
            player: Rc::new(RefCell::new(None)),
        }
    }

    /// One player per torrent: the one before is stopped first, since a stopping player
    /// unhooks whatever player the session drives (`on_pump`), and that must not be the new one.
    fn play(&self, start: impl FnOnce() -> Result<Player, JsValue>) -> Result<(), JsValue> {
        self.stop_playing();
        *self.player.borrow_mut() = Some(start()?);
        Ok(())
    }

    fn stop_playing(&self) {
        if let Some(old) = self.player.borrow_mut().take() {
            old.stop();
        }
    }
}

#[wasm_bindgen]
impl Torrent {
    #[wasm_bindgen(getter, js_name = infoHash)]
    pub fn info_hash(&self) -> String {
        self.session.info_hash().to_hex()
    }

    /// The torrent's name, once the metadata is known.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> Option<String> {
        self.session
            .peek(|e| e.metainfo().map(|m| m.info.name.clone()))
    }

    /// Total bytes, once the metadata is known.
    #[wasm_bindgen(getter)]
    pub fn length(&self) -> Option<f64> {
        self.session
            .peek(|e| e.metainfo().map(|m| m.info.total_length as f64))
    }

    /// A magnet link for this torrent (trackers and WebSeeds included).
    #[wasm_bindgen(getter, js_name = magnetURI)]
    pub fn magnet_uri(&self) -> String {
        self.session.peek(|e| match e.metainfo() {
            Some(m) => Magnet::from(m).to_string(),
            None => Magnet::new(e.info_hash()).to_string(),
        })
    }

    /// Listens to `metadata`, `verified` (piece index), `peer`, `done`, `hashfail`,
    /// `warning` and `error`.
    pub fn on(&self, event: &str, callback: Function) {
        self.session.on(event, callback);
    }

    /// A snapshot: bytes from peers and from WebSeeds, uploaded, rates, peers, pieces.
    pub fn stats(&self) -> JsValue {
        let stats = self.session.stats();
        serde_json::to_string(&stats)
            .ok()
            .and_then(|json| js_sys::JSON::parse(&json).ok())
            .unwrap_or(JsValue::NULL)
    }

    /// Which pieces are held (1) or missing (0), for piece maps.
    #[wasm_bindgen(js_name = pieceMap)]
    pub fn piece_map(&self) -> Vec<u8> {
        self.session.peek(|e| {
            let count = e.metainfo().map(|m| m.info.piece_count()).unwrap_or(0);
            (0..count).map(|i| u8::from(e.has_piece(i))).collect()
        })
    }

    /// Resolves with the whole content as a `Blob` once every piece is verified (the content
    /// must fit the memory budget).
    pub fn blob(&self) -> js_sys::Promise {
        let session = self.session.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            whole_blob(session).await.map(JsValue::from)
        })
    }

    /// Plays the torrent's (single) file in a `<video>` or `<audio>` element through
    /// MediaSource, from the first verified pieces on; seeking moves the download window.
    /// `opts.mimeType` may name the type when the file name does not tell it.
    #[wasm_bindgen(js_name = streamTo)]
    pub fn stream_to(
        &self,
        element: web_sys::HtmlMediaElement,
        opts: JsValue,
    ) -> Result<(), JsValue> {
        let mime_hint = get(&opts, "mimeType").as_string();
        self.play(|| Player::attach(self.session.clone(), element, mime_hint))
    }

    /// Stops the torrent: connections, requests and playback.
    pub fn destroy(&self) {
        self.stop_playing();
        self.session.destroy();
    }
}

async fn whole_blob(session: Session) -> Result<web_sys::Blob, JsValue> {
    loop {
        let (done, total) =
            session.peek(|e| (e.is_done(), e.metainfo().map(|m| m.info.total_length)));
        if done {
            let total = total.unwrap_or(0) as usize;
            let bytes = session.read(0, total).ok_or_else(|| {
                js_error("the content is larger than the memory budget: stream it instead")
            })?;
            let parts = js_sys::Array::of1(&Uint8Array::from(bytes.as_slice()));
            return web_sys::Blob::new_with_u8_array_sequence(&parts);
        }
        util::sleep(100).await;
    }
}
