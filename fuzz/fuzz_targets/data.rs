//! libFuzzer entry for `vitrine::fuzz::data` (what it reads: see its docs).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = vitrine::fuzz::data(data) {
        panic!("fuzz harness: cannot set up the scratch folder: {e}");
    }
});
