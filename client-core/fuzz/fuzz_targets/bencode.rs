//! Fuzz target: see ../checks.rs for what must hold for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::bencode(data));
