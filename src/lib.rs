//! parlor: a terminal chat and customer-support bot framework.
//!
//! One binary loads persona YAML ([`persona`]), keeps every conversation in sled ([`store`]),
//! runs GGUF models in-process through llama.cpp ([`engine`]), and talks to people through a
//! ratatui terminal UI ([`tui`]) or a Telegram bot ([`telegram`]).
//!
//! # The modules, bottom up
//!
//! Each module uses only those above it in this list (`tests/integration/architecture.rs`
//! fails on an import circle between them; `cli` and `cmd` count as one).
//!
//! | module | owns |
//! |---|---|
//! | [`matching`] | pure matching of grounded support: hybrid retrieval scores, embeddings, person intent, the specifics check |
//! | [`chat`] | pure domain types: roles, messages, session ids, turn stats |
//! | [`yaml`] | the one place YAML is parsed, with `file:line:col: field: problem` errors |
//! | [`models`] | the model registry, `model pull`, checksums; the default model re-encoded once as Q8_0 (`models::{gguf,q8,derived}`, `engine.format`) |
//! | [`logging`] | rotated log files in `storage/logs/`, stderr for services |
//! | [`sanitize`] | stored and model text made inert for terminals (TUI and every command) |
//! | [`home`] | where `bots/`, `personas/` and `storage/` live (resolved from plain values) |
//! | [`store`] | the only code that touches sled: sessions, messages, key-value records; content sealed with per-conversation keys, so an erase (key first) leaves nothing readable |
//! | [`engine`] | the [`engine::Engine`] trait: llama.cpp on its own thread, scripted, remote |
//! | [`persona`] | persona YAML -> validated [`persona::Persona`]; rules, FAQ, prompt assembly |
//! | [`import`] | Character Card / Modelfile import and export of personas |
//! | [`support`] | grounded support over a persona: cached FAQ embeddings, grounded prompt, `eval` and `report` |
//! | [`config`] | bot YAML -> validated [`config::BotSpec`] (its `telegram:` section too) |
//! | [`bot`] | [`bot::Bot`]: the only door to conversations; the turn and its pure core; [`bot::Archive`], the same door without a model (history, report, prune) |
//! | [`tui`], [`telegram`] | the front ends; they talk to [`bot::Bot`] only |
//! | [`launch`] | command-line choices -> a ready bot (home, spec, persona, model, store, engine) |
//! | [`testkit`] | test support (feature `testkit`): fake Bot API server, store probes |
//! | [`bench`] | `parlor bench` (feature `bench`), one file per section |
//! | [`cmd`], [`cli`] | one module per subcommand; clap definitions; commands reach conversations through [`bot`] too |
//!
//! # One message's path
//!
//! 1. **In.** TUI: crossterm's `EventStream` in the shell's one `tokio::select!` loop
//!    (`tui::shell`) becomes a `Msg`; the pure `tui::update` returns `Command::StartTurn`,
//!    which the shell carries out. Telegram: an update from long polling or the webhook
//!    (`telegram::service`) is claimed by its id, stored as pending and flushed (before the
//!    next `getUpdates` acknowledges it), and wakes that chat's worker task
//!    (`telegram::worker`), which joins a burst of messages into one turn.
//! 2. **The turn.** Both call [`bot::Bot::turn`], which spawns one tokio task per turn
//!    (`bot::turn`): read the history, store the user message (flushed), decide with the pure
//!    [`bot::plan_turn`] (rules, FAQ, prompt fitted to the window), store the session's new
//!    rule state, and either answer from a rule/FAQ or ask the engine.
//! 3. **The engine.** [`engine::LlamaEngine::generate`] sends a job over a channel to the one
//!    inference thread (`engine::llama::worker`), which binds it to a sequence slot, reuses the
//!    cached token prefix (a new conversation takes the persona's prefix from another slot or a
//!    saved state: `engine::llama::prefix`), and decodes one batch per step for all active
//!    chats. Text comes back on a bounded channel per request, handed over at most every 40 ms.
//! 4. **Back.** The turn task forwards tokens as [`bot::ReplyEvent`]s over the [`bot::Reply`]
//!    stream (bounded: a slow reader slows the model), stores the reply (flushed) and ends with
//!    one [`bot::TurnOutcome`]. The TUI shows the tokens as they come; Telegram streams them
//!    into a draft or an edited message (`telegram::stream`) and sends the final text through
//!    the paced outbox (`telegram::outbox`), then clears the pending messages.
//!
//! Dropping the `Reply` cancels the turn: the turn task notices at once (it also waits on the
//! channel closing), drops the engine stream, and stores the partial reply as interrupted;
//! [`bot::Reply::cancel`] returns a future that resolves when that write is done.
//!
//! # Threads and owners
//!
//! - The tokio runtime (multi-threaded) runs the front end, one task per turn, Telegram's
//!   per-chat workers, its display/typing loops and handoff expiry loop, and the persona
//!   watcher. Blocking work (model load, checksums, closing the engine) goes to
//!   `spawn_blocking`.
//! - One OS thread, `parlor-inference`, owns the llama.cpp context (not thread-safe) and its KV
//!   cache; nothing else touches it. The model weights are shared read-only (`Arc`), so prompts
//!   are tokenized and counted on the caller's thread; the last prompts tokenized are kept
//!   (`engine::llama::prompts`, behind a mutex shared with the inference thread), so a turn's
//!   prompt counted while fitting the window is not tokenized again when it starts.
//! - [`store::Store`] is owned by the [`bot::Bot`] (a cheap clone of sled's handles); front
//!   ends reach it only through `Bot` methods, their own key-value state included
//!   ([`bot::Bot::front_state`]).
//!
//! # Where writes become durable
//!
//! The user message is flushed before generation starts; the reply when it ends; Telegram's
//! pending updates before the next poll acknowledges them, and their removal only after the
//! answer is sent. sled has one log, so one flush makes every earlier write durable.

pub mod matching;

pub mod chat;
pub mod yaml;

pub mod home;
pub mod logging;
pub mod models;
pub mod sanitize;
pub mod store;

pub mod engine;
pub mod import;
pub mod persona;

pub mod support;

pub mod bot;
pub mod config;

pub mod telegram;
pub mod tui;

pub mod launch;

#[cfg(feature = "bench")]
pub mod bench;
#[cfg(feature = "testkit")]
pub mod testkit;

pub mod cli;
pub mod cmd;
