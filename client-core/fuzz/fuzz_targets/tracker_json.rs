//! Fuzz target: see ../checks_tracker.rs for what must hold for every input.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks_tracker.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::tracker_json(data));
