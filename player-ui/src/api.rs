//! The pod's JSON API as the app sees it: typed answers, one error type with a sentence a person
//! can read. Requests go to the origin that served the app.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Largest `.torrent` the player fetches (a 4 GiB file with small pieces has a few MiB).
const MAX_TORRENT_BYTES: u32 = 16 << 20;

#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// The pod a video comes from: this one (`local`) or a followed one.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct PodRef {
    pub host: String,
    pub url: String,
    pub local: bool,
}

/// A video or audio item, as the pod describes it. Fields the app can live without default,
/// so that an older or newer pod does not break the page.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Video {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub description: String,
    pub tags: Vec<String>,
    pub duration: Option<f64>,
    pub mime_type: String,
    pub is_audio: bool,
    pub size: u64,
    pub magnet_uri: String,
    pub torrent_url: String,
    pub file_url: String,
    pub thumbnail_url: Option<String>,
    pub watch_url: String,
    pub embed_url: String,
    pub views: u64,
    pub created_at: String,
    pub pod: PodRef,
}

/// One page of a list or a search.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct VideoPage {
    pub total: u64,
    pub data: Vec<Video>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
}

/// The sentence a failed answer carries (`{"error":{"message":…}}`), or its status.
pub fn error_message(status: u16, body: &str) -> String {
    serde_json::from_str::<ErrorBody>(body)
        .map(|b| b.error.message)
        .unwrap_or_else(|_| format!("the pod answered HTTP {status}"))
}

async fn fetch(path: &str, method: &str) -> Result<web_sys::Response, String> {
    let window = web_sys::window().ok_or("no window")?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    let response = JsFuture::from(window.fetch_with_str_and_init(path, &init))
        .await
        .map_err(|_| "the pod cannot be reached".to_string())?;
    response
        .dyn_into()
        .map_err(|_| "unexpected answer".to_string())
}

async fn text_of(response: &web_sys::Response) -> Result<String, String> {
    let promise = response
        .text()
        .map_err(|_| "unreadable answer".to_string())?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(|_| "unreadable answer".to_string())?
        .as_string()
        .unwrap_or_default())
}

/// GET a JSON document from the pod.
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let response = fetch(path, "GET").await?;
    let text = text_of(&response).await?;
    if !response.ok() {
        return Err(error_message(response.status(), &text));
    }
    serde_json::from_str(&text).map_err(|e| format!("unexpected answer from the pod: {e}"))
}

pub async fn health() -> Result<Health, String> {
    get_json("/api/v1/health").await
}

/// A page of this pod's videos, `sort` as the API takes it (`-createdAt`, `-views`, …).
pub async fn list_videos(sort: &str, start: u64, count: u64) -> Result<VideoPage, String> {
    get_json(&format!(
        "/api/v1/videos?sort={sort}&start={start}&count={count}"
    ))
    .await
}

/// Full-text search, ranked by the pod; `media_type` is `video`, `audio` or empty for both.
pub async fn search_videos(
    text: &str,
    media_type: &str,
    start: u64,
    count: u64,
) -> Result<VideoPage, String> {
    let mut path = format!(
        "/api/v1/search/videos?search={}&start={start}&count={count}",
        encode(text)
    );
    if !media_type.is_empty() {
        path.push_str("&mediaType=");
        path.push_str(&encode(media_type));
    }
    get_json(&path).await
}

pub async fn get_video(id: &str) -> Result<Video, String> {
    get_json(&format!("/api/v1/videos/{}", encode(id))).await
}

/// Counts one view (feeds the pod's "popular" order). Best effort: a failure changes nothing
/// for the viewer.
pub async fn add_view(uuid: &str) {
    let _ = fetch(&format!("/api/v1/videos/{}/views", encode(uuid)), "POST").await;
}

/// The bytes of a `.torrent` file.
pub async fn get_torrent(url: &str) -> Result<Vec<u8>, String> {
    let response = fetch(url, "GET").await?;
    if !response.ok() {
        return Err(format!(
            "the torrent file answered HTTP {}",
            response.status()
        ));
    }
    let promise = response
        .array_buffer()
        .map_err(|_| "unreadable torrent file".to_string())?;
    let buffer = JsFuture::from(promise)
        .await
        .map_err(|_| "unreadable torrent file".to_string())?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    if bytes.length() > MAX_TORRENT_BYTES {
        return Err("the torrent file is too large".into());
    }
    Ok(bytes.to_vec())
}

/// Percent-encodes a query or path component.
pub fn encode(text: &str) -> String {
    js_sys::encode_uri_component(text).into()
}
