//! The pod's JSON API as the app sees it: typed answers, one error type with a sentence a person
//! can read. Requests go to the origin that served the app.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[derive(Debug, Clone, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
}

/// GET a JSON document from the pod.
pub async fn get_json<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let window = web_sys::window().ok_or("no window")?;
    let response = JsFuture::from(window.fetch_with_str(path))
        .await
        .map_err(|_| "the pod cannot be reached".to_string())?;
    let response: web_sys::Response = response
        .dyn_into()
        .map_err(|_| "unexpected answer".to_string())?;
    let text = JsFuture::from(
        response
            .text()
            .map_err(|_| "unreadable answer".to_string())?,
    )
    .await
    .map_err(|_| "unreadable answer".to_string())?
    .as_string()
    .unwrap_or_default();
    if !response.ok() {
        return Err(format!("the pod answered {}", response.status()));
    }
    serde_json::from_str(&text).map_err(|e| format!("unexpected answer from the pod: {e}"))
}

pub async fn health() -> Result<Health, String> {
    get_json("/api/v1/health").await
}
