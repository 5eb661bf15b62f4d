//! WebSeed requests at the browser's edge: one `fetch` with `Range` per
//! [`Action::WebSeedRequest`](crate::engine::Action::WebSeedRequest), its body handed over part
//! by part as it streams in. A request may carry several pieces (a span, at start-up): the
//! first is verified and played while the rest is still on its way.

use js_sys::{Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader, RequestInit, Response, Window};

use super::util;
use crate::engine::{WebSeedError, WebSeedPart};

/// A WebSeed request that takes longer is aborted.
const FETCH_TIMEOUT_MS: u32 = 60_000;

/// A range request on its way: started at once (the caller may be in the middle of start-up
/// work that would otherwise delay it), read by [`RangeFetch::stream`].
pub(super) struct RangeFetch {
    window: Window,
    response: Promise,
    start: u64,
    timer: Option<i32>,
}

impl RangeFetch {
    /// Sends `GET url` with `Range: bytes=start-end` (exact, no cache: Chrome serialises
    /// cached range requests, §4.2), aborted by `controller` or after [`FETCH_TIMEOUT_MS`].
    pub fn start(
        url: &str,
        start: u64,
        end: u64,
        controller: &AbortController,
    ) -> Result<Self, WebSeedError> {
        let network = |e: JsValue| WebSeedError::Network(util::describe(&e));
        let window = web_sys::window().ok_or(WebSeedError::Network("no window".into()))?;
        let init = RequestInit::new();
        init.set_method("GET");
        init.set_signal(Some(&controller.signal()));
        init.set_cache(web_sys::RequestCache::NoStore);
        let headers = web_sys::Headers::new().map_err(network)?;
        let _ = headers.set("Range", &format!("bytes={start}-{end}"));
        init.set_headers(&headers);
        let timeout_controller = controller.clone();
        let timeout = Closure::once_into_js(move || timeout_controller.abort());
        let timer = window
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                timeout.unchecked_ref(),
                FETCH_TIMEOUT_MS as i32,
            )
            .ok();
        let response = window.fetch_with_str_and_init(url, &init);
        Ok(Self {
            window,
            response,
            start,
            timer,
        })
    }

    /// Reads the body and calls `deliver` with each part (`(id, bytes)`, in order) as soon as it
    /// is whole. `deliver` answers whether any later part is still wanted; when none is, the
    /// request is aborted. An error is for the parts not delivered.
    pub async fn stream(
        self,
        parts: &[WebSeedPart],
        controller: &AbortController,
        mut deliver: impl FnMut((u64, Vec<u8>)) -> bool,
    ) -> Result<(), WebSeedError> {
        let result = read_parts(self.response, self.start, parts, &mut deliver).await;
        if let Some(timer) = self.timer {
            self.window.clear_timeout_with_handle(timer);
        }
        // Stopped before the body's end (nothing more wanted, the rest of a 200's whole file,
        // or a failure): abort, so that the rest is not read. A body read to its end is left
        // alone: aborting it would cost the browser its kept-alive connection.
        if !matches!(result, Ok(Ended::Whole)) {
            controller.abort();
        }
        result.map(|_| ())
    }
}

/// How reading a body ended.
enum Ended {
    /// Every part delivered, and the body ended there.
    Whole,
    /// Stopped early: nothing more wanted, or more bytes than asked for.
    Early,
}

async fn read_parts(
    response: Promise,
    start: u64,
    parts: &[WebSeedPart],
    deliver: &mut impl FnMut((u64, Vec<u8>)) -> bool,
) -> Result<Ended, WebSeedError> {
    let network = |e: JsValue| WebSeedError::Network(util::describe(&e));
    let response: Response = JsFuture::from(response)
        .await
        .map_err(network)?
        .dyn_into()
        .map_err(|_| WebSeedError::Network("not a response".into()))?;
    // A server that ignores `Range` answers 200 with the whole file: fine from byte 0 (the
    // parts are its beginning), wrong anywhere else.
    if response.status() != 206 && !(response.status() == 200 && start == 0) {
        return Err(WebSeedError::Status(response.status()));
    }
    let body = response
        .body()
        .ok_or_else(|| WebSeedError::Network("a response without a body".into()))?;
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut parts = parts.iter().peekable();
    let mut bytes: Vec<u8> = Vec::new();
    let is_done =
        |read: &JsValue| Reflect::get(read, &"done".into()).map_or(true, |d| d.is_truthy());
    while let Some(part) = parts.peek() {
        let read = JsFuture::from(reader.read()).await.map_err(network)?;
        if is_done(&read) {
            let missing = part.len - bytes.len() as u64;
            let after: u64 = parts.skip(1).map(|p| p.len).sum();
            return Err(WebSeedError::Network(format!(
                "the response ended {} bytes short",
                missing + after
            )));
        }
        let chunk: Uint8Array = Reflect::get(&read, &"value".into())
            .map_err(network)?
            .dyn_into()
            .map_err(|_| WebSeedError::Network("a body chunk that is not bytes".into()))?;
        // Each part goes to the engine as soon as it is whole, even when the chunk holds more:
        // at start-up one chunk carries the whole first span (about 50 pieces), and the player
        // appends the init segment from the first piece while the rest is still being
        // verified; the browser sets up its decoders meanwhile (the first frame came 5 ms
        // sooner than with the span handed over at once, and 5 ms sooner than with the init
        // segment and the first fragment appended together).
        let mut at = 0;
        while let Some(part) = parts.peek().filter(|_| at < chunk.length()) {
            let wanted = part.len - bytes.len() as u64;
            let take = wanted.min(u64::from(chunk.length() - at)) as u32;
            let filled = bytes.len();
            bytes.resize(filled + take as usize, 0);
            chunk.subarray(at, at + take).copy_to(&mut bytes[filled..]);
            at += take;
            if bytes.len() as u64 == part.len {
                let whole = (part.id, std::mem::take(&mut bytes));
                parts.next();
                if !deliver(whole) {
                    return Ok(Ended::Early);
                }
            }
        }
    }
    // The body should end here (a 206 does at once).
    let read = JsFuture::from(reader.read()).await.map_err(network)?;
    Ok(if is_done(&read) {
        Ended::Whole
    } else {
        Ended::Early
    })
}
