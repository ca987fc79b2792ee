//! cargo fuzz target: see `playground_fuzz::check_settings` for the contract it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    playground_fuzz::check_settings(data);
});
