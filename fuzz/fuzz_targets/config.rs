//! The TOML config file: parse and validation (`Config::from_toml`), then what
//! `billd config check` and `billd serve` do with a valid one before opening anything:
//! the secrets resolved from the variables it names, masked for display.
#![no_main]

use billd::config::{Config, Secrets, mask, mask_url, without_credentials};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The masks are for any string a config may hold.
    let _ = mask(text);
    let _ = without_credentials(text);
    let _ = mask_url(text);
    let Ok(config) = Config::from_toml(text) else {
        return;
    };
    assert!(
        config.validate().is_ok(),
        "from_toml answered an invalid config"
    );
    let _ = config.busy_timeout();
    if let Some(url) = &config.database.url {
        let _ = without_credentials(url);
    }
    // Every variable holds the input's first line: secrets of any shape.
    let value = text.lines().next().unwrap_or_default().to_string();
    if let Ok(s) = Secrets::from_lookup(&config, |_| Some(value.clone())) {
        let _ = s.describe_key();
        let _ = s.describe_webhook_secrets();
    }
    let _ = config.alerts.webhook_url(|_| Some(value.clone()));
});
