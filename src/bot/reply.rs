//! What a turn gives its front end: the [`Reply`] stream of [`ReplyEvent`]s, ending in one
//! [`TurnOutcome`], and the per-turn [`TurnOptions`].

use crate::chat::{ReplySource, TurnStats};
use crate::engine::Sampling;
use crate::matching::MatchInfo;
use crate::support::turn::Choice;
use futures::Stream;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// Capacity of a reply channel: a slow front end slows generation instead of growing memory.
const REPLY_BUFFER: usize = 64;

/// What a turn streams to a front end.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    /// The engine is busy with other chats: this turn waits at `position` (1 = next).
    Queued {
        /// 1-based place in line.
        position: usize,
    },
    /// A piece of reply text.
    Token(String),
    /// The reply ended and is stored.
    Done(TurnOutcome),
    /// The turn failed; the text is for users. Whatever was generated is stored as interrupted.
    Failed(String),
}

/// A finished turn: everything a front end needs to know about it, so none reads the store
/// again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TurnOutcome {
    /// The whole reply text.
    pub text: String,
    /// Numbers about the turn.
    pub stats: TurnStats,
    /// What produced the reply.
    pub source: ReplySource,
    /// Sequence number of the stored reply.
    pub seq: u64,
    /// Display name of the persona speaking in the session now (a `switch_persona` rule may
    /// have changed it in this turn).
    pub persona: String,
    /// An `end_session` rule ended the session: front ends start a new one for the next
    /// message.
    pub ended: bool,
    /// A `handoff` rule asked for a human (in this turn or an earlier one of the session,
    /// until a front end takes the request with [`Bot::take_handoff`](super::Bot::take_handoff)).
    pub handoff: bool,
    /// The reply is grounded mode's "not sure" and offers a human (front ends may show a
    /// button for the persona's handoff, e.g. `/human`).
    pub offer_handoff: bool,
    /// "Did you mean" choices offered by this reply (pick one with
    /// [`Bot::choose`](super::Bot::choose), or by sending its number).
    pub choices: Vec<Choice>,
    /// What FAQ retrieval saw: scores, runner-up, signal (also in `stats.retrieval`).
    pub retrieval: Option<Box<MatchInfo>>,
}

/// Per-turn overrides (CLI flags, tests).
#[derive(Debug, Clone, Default)]
pub struct TurnOptions {
    /// Replace the persona's sampling settings.
    pub sampling: Option<Sampling>,
    /// Replace the persona's reply length cap.
    pub max_tokens: Option<u32>,
    /// Name for `{{user}}`.
    pub user_name: Option<String>,
}

/// The stream of one turn. Dropping it cancels the turn; the partial reply is stored as
/// interrupted. [`Reply::cancel`] does the same and says when that is done.
pub struct Reply {
    rx: mpsc::Receiver<ReplyEvent>,
    /// Closed by the turn task when it ends, after its last write to the store.
    ended: oneshot::Receiver<()>,
}

/// The turn task's side of a [`Reply`].
pub(super) struct ReplySender {
    pub(super) tx: mpsc::Sender<ReplyEvent>,
    /// Dropped with the task's last reference, after the turn's writes: wakes [`Settled`].
    pub(super) _ended: oneshot::Sender<()>,
}

impl Reply {
    /// A connected reply and its sending side.
    pub(super) fn channel() -> (Self, ReplySender) {
        let (tx, rx) = mpsc::channel(REPLY_BUFFER);
        let (ended_tx, ended) = oneshot::channel();
        (
            Self { rx, ended },
            ReplySender {
                tx,
                _ended: ended_tx,
            },
        )
    }

    /// The next event, or `None` after `Done`/`Failed`.
    pub async fn next(&mut self) -> Option<ReplyEvent> {
        self.rx.recv().await
    }

    /// Wait for the end of the turn, ignoring streamed pieces.
    pub async fn finish(mut self) -> Result<TurnOutcome, String> {
        while let Some(ev) = self.rx.recv().await {
            match ev {
                ReplyEvent::Done(outcome) => return Ok(outcome),
                ReplyEvent::Failed(msg) => return Err(msg),
                ReplyEvent::Token(_) | ReplyEvent::Queued { .. } => {}
            }
        }
        Err("the turn ended without a reply".to_string())
    }

    /// Cancel the turn (as dropping it does). The returned future resolves once the turn has
    /// ended and stored what it will store (the partial reply, marked interrupted).
    pub fn cancel(self) -> Settled {
        let Self { rx, ended } = self;
        drop(rx);
        Settled(ended)
    }
}

/// Resolves when a cancelled turn has stored its partial reply ([`Reply::cancel`]).
pub struct Settled(oneshot::Receiver<()>);

impl Future for Settled {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // The sender is never used: it is dropped when the turn task ends.
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Stream for Reply {
    type Item = ReplyEvent;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ReplyEvent>> {
        self.rx.poll_recv(cx)
    }
}
