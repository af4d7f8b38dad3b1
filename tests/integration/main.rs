//! The one integration test binary (linking llama.cpp into many binaries costs minutes).
//! Each module covers one area; shared helpers live in `common`.

mod architecture;
mod cards;
mod check;
mod common;
mod engine;
mod erase;
mod faq_eval;
mod grounded;
mod knowledge;
mod models;
mod ops;
mod prefix;
mod remote;
mod scripting;
mod slots;
mod store;
mod telegram;
mod tui;
mod turns;
