//! Fuzzes the config loader: any text is either a configuration (then validated, which
//! lists problems instead of panicking) or an error naming what is wrong.

#![no_main]

use libfuzzer_sys::fuzz_target;
use uss::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_toml(text) {
        Ok(config) => {
            let _ = config.validate();
            let _ = config.rules.limits();
        }
        Err(message) => assert!(!message.is_empty()),
    }
});
