//! Small browser helpers: the clock, timers, randomness, logging.

use std::cell::Cell;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::engine::Millis;

thread_local! {
    /// The page's clock origin, so that engine times start near zero.
    static ORIGIN: Cell<Option<f64>> = const { Cell::new(None) };
}

#[wasm_bindgen]
extern "C" {
    /// `performance.now()` of the page or worker, called directly: the clock is read on every
    /// event, and looking `performance` up on the global object each time (a property name
    /// made into a JS string, a type check) made `now` cost 91 ms of the main thread in a
    /// 60 MB download (about 40 ms called directly).
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
}

/// Monotonic milliseconds for the engine.
pub fn now() -> Millis {
    let t = performance_now();
    let origin = ORIGIN.with(|o| match o.get() {
        Some(origin) => origin,
        None => {
            o.set(Some(t));
            t
        }
    });
    Millis((t - origin).max(0.0) as u64)
}

/// Hashes 64 KiB once per page, so that V8 has SHA-1 compiled by its optimising tier before the
/// first pieces arrive. Without it, the start-up's first span (about 50 pieces) was verified
/// partly by the baseline compiler's code at about 80 MB/s (0.2 ms a piece) until the
/// optimised code was ready, 5-12 ms on the way to the first frame. Called while a request is
/// in flight: the main thread only waits then, and the optimising compile runs on a worker.
pub fn warm_up_hashing() {
    use sha1::{Digest, Sha1};
    thread_local! {
        static WARM: Cell<bool> = const { Cell::new(false) };
    }
    if WARM.with(|w| w.replace(true)) {
        return;
    }
    let zeros = vec![0u8; 64 * 1024];
    std::hint::black_box(Sha1::digest(std::hint::black_box(&zeros)));
}

/// The page's SubtleCrypto, if it has one: only secure contexts do (https, localhost), so a
/// pod served over plain http on a LAN address gives none.
pub fn subtle_crypto() -> Option<web_sys::SubtleCrypto> {
    let crypto = web_sys::window()?.crypto().ok()?;
    let subtle = js_sys::Reflect::get(&crypto, &"subtle".into()).ok()?;
    subtle.dyn_into().ok()
}

/// Starts hashing `data` with SHA-1 in the browser (off the main thread, with the CPU's SHA
/// instructions where it has them). `digest` copies `data` when called, so `data` may be a
/// view into wasm memory that changes right after. `None` if the browser refused.
pub fn start_sha1(subtle: &web_sys::SubtleCrypto, data: &[u8]) -> Option<Promise> {
    subtle.digest_with_str_and_u8_array("SHA-1", data).ok()
}

/// The digest a [`start_sha1`] promise resolves to.
pub async fn sha1_result(promise: Promise) -> Option<[u8; 20]> {
    let buffer = JsFuture::from(promise).await.ok()?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    if bytes.length() != 20 {
        return None;
    }
    let mut digest = [0u8; 20];
    bytes.copy_to(&mut digest);
    Some(digest)
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = web_sys::window()
            .map(|w| w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32));
    });
    let _ = JsFuture::from(promise).await;
}

/// Cryptographically random bytes (peer ids, offer ids, channel labels).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(crypto) = web_sys::window().and_then(|w| w.crypto().ok()) {
        let _ = crypto.get_random_values_with_u8_array(&mut out);
    } else {
        for b in out.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    out
}

/// A JS error value with a message, for promises the JS API rejects.
pub fn js_error(message: impl AsRef<str>) -> JsValue {
    js_sys::Error::new(message.as_ref()).into()
}

/// The message of a JS exception, for logs and errors.
pub fn describe(err: &JsValue) -> String {
    err.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| err.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}

pub fn log(message: &str) {
    web_sys::console::log_1(&message.into());
}

pub fn warn(message: &str) {
    web_sys::console::warn_1(&message.into());
}
