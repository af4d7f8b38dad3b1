//! parlor: a terminal chat and customer-support bot framework.
//!
//! One binary loads persona YAML ([`persona`]), keeps every conversation in sled ([`store`]),
//! runs GGUF models in-process through llama.cpp ([`engine`]), and talks to people through a
//! ratatui terminal UI ([`tui`]) or a Telegram bot ([`telegram`]).
//!
//! The map:
//! - [`chat`]: pure domain types (roles, messages, session ids, turn stats).
//! - [`yaml`]: the one place YAML is parsed, with `file:line:col: field: problem` errors.
//! - [`home`]: where `bots/`, `personas/` and `storage/` live.
//! - [`config`]: bot YAML -> validated [`config::BotSpec`].
//! - [`persona`]: persona YAML -> validated [`persona::Persona`]; prompt assembly.
//! - [`store`]: the only code that touches sled; conversation content sealed with per-conversation
//!   keys, so an erase (key first) leaves nothing readable.
//! - [`engine`]: the [`engine::Engine`] trait: llama.cpp, scripted (tests), OpenAI-compatible.
//! - [`models`]: registry, `model pull`, path resolution.
//! - [`launch`]: CLI choices -> a ready bot (home, spec, persona, model, store, engine).
//! - [`bot`]: [`bot::Bot`] = persona + engine + store; `turn()` streams a [`bot::Reply`].
//! - [`tui`], [`telegram`]: the front ends.
//! - [`bench`]: `parlor bench`, the performance report.
//! - [`cmd`]: one module per CLI subcommand; [`cli`] ties them together.

pub mod bench;
pub mod bot;
pub mod chat;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod home;
pub mod launch;
pub mod models;
pub mod persona;
pub mod store;
pub mod telegram;
pub mod tui;
pub mod yaml;
