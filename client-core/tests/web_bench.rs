//! The native benchmark kernels (benches/kernels.rs) run in a real browser, to compare wasm with
//! native in one run: `./shoal bench` runs this with `--release` and prints the ratio.
//! Not part of the test suite (it asserts nothing); run it through the bench command.
#![cfg(target_arch = "wasm32")]

#[path = "../benches/kernels.rs"]
mod kernels;

use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn now() -> f64 {
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| wasm_bindgen::JsCast::dyn_into::<web_sys::Performance>(p).ok())
        .map(|p| p.now() / 1000.0)
        .unwrap_or(0.0)
}

#[wasm_bindgen_test]
fn wasm_throughput() {
    for m in [kernels::sha1_pieces(&now), kernels::wire_decode(&now)] {
        web_sys::console::log_1(&format!("wasm {}", m.line()).into());
    }
}
