//! Fuzz target: see ../checks_media.rs for what must hold for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks_media.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::media(data));
