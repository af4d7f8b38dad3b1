//! Test support, compiled with the `testkit` feature (on in default builds for `parlor bench`,
//! and always for the tests through the dev-dependency on this package): a fake Telegram Bot
//! API server ([`fake_telegram`]) and the store probes behind `parlor debug` ([`store_probe`]).
//! Nothing in the product modules uses it.

pub mod fake_telegram;
pub mod store_probe;
