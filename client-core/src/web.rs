//! The browser edge (wasm32 only): what the page sees of client-core. Protocol logic stays in the
//! sans-IO modules; this module only adapts them to JavaScript and `web-sys`.

use wasm_bindgen::prelude::*;

/// The engine's version, for pages that embed the client library.
#[wasm_bindgen(js_name = version)]
pub fn version() -> String {
    crate::VERSION.to_owned()
}
