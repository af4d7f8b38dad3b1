//! Grounded support above the persona: [`index`] holds a persona's cached embeddings and
//! scores messages with the pure parts of [`crate::matching`]; [`turn`] builds the grounded
//! prompt and checks a reply; [`eval`] and [`report`] are the author's loop (`parlor eval`,
//! `parlor report`). The grounding setting itself is [`crate::persona::grounding`].

pub mod eval;
pub mod index;
pub mod report;
pub mod turn;

pub use crate::matching::{EntryScore, MatchInfo};
