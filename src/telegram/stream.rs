//! Showing one reply as it is generated: a typing indicator until text shows, then drafts
//! (`sendMessageDraft`, private chats, when the server has it) or edits of one message, paced
//! by the outbox; the display task always sends the newest text, so a slow chat skips
//! intermediate states instead of queueing them. The final reply is rendered to HTML, split
//! under the length limit, and replaces the streamed message; a rating question follows it.

use super::buttons::{RATING_QUESTION, ReplyButtons};
use super::context::Sender;
use super::outbox::{Author, SendError, Target};
use super::render::markdown_to_html;
use super::split::{CHUNK_BUDGET, split_markdown, utf16_len};
use super::undelivered::Item;
use crate::bot::{Reply, ReplyEvent, TurnOutcome};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How a reply ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streamed {
    /// The whole reply was sent. What the turn's persona rules did: the session `ended`, a
    /// human was asked for (`handoff`).
    Completed {
        /// An `end_session` rule ended the session.
        ended: bool,
        /// A `handoff` rule asked for a human.
        handoff: bool,
    },
    /// The user stopped it (`/stop`, handoff); what was written is kept.
    Stopped,
    /// The turn failed; the user was told.
    Failed,
    /// Shutdown cut it; the message stays pending.
    Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Draft,
    Edit,
    Off,
}

/// Longest partial text shown while streaming (the final reply is split properly).
const PREVIEW_LIMIT: usize = 4000;

/// Stream `reply` into `target`. `stop` cancels the turn (the partial reply is kept). A
/// finished reply gets the buttons `buttons` makes for its outcome.
pub async fn stream_reply(
    s: &Sender,
    target: Target,
    reply_to: Option<i64>,
    mut reply: Reply,
    stop: CancellationToken,
    buttons: impl FnOnce(&TurnOutcome) -> ReplyButtons,
) -> Streamed {
    use super::config::Streaming;
    let mode = match s.cfg.streaming {
        Streaming::Off => Mode::Off,
        Streaming::Edit => Mode::Edit,
        Streaming::Auto if !target.group && s.drafts.load(Relaxed) != 2 => Mode::Draft,
        Streaming::Auto => Mode::Edit,
    };
    let started = std::time::Instant::now();
    let (tx, rx) = watch::channel(String::new());
    let shown = CancellationToken::new();
    let done = CancellationToken::new();
    let display = tokio::spawn(display_loop(
        s.clone(),
        target,
        mode,
        rx,
        shown.clone(),
        done.clone(),
    ));
    let typing = tokio::spawn(typing_loop(s.clone(), target, shown.clone()));
    let mut text = String::new();
    let mut told_queue = false;
    enum End {
        Done(TurnOutcome),
        Failed(String),
        Stopped,
        Cut,
    }
    let end = loop {
        tokio::select! {
            ev = reply.next() => match ev {
                Some(ReplyEvent::Token(t)) => {
                    text.push_str(&t);
                    if mode != Mode::Off && !text.trim().is_empty() {
                        tx.send_replace(text.clone());
                    }
                }
                Some(ReplyEvent::Queued { position }) => {
                    if !told_queue {
                        told_queue = true;
                        let note = format!("Other customers are ahead of you (you are number {position} in line). I will answer as soon as I can.");
                        let _ = s.out.send(target, Author::Bot, None, &note, reply_to).await;
                    }
                }
                Some(ReplyEvent::Done(o)) => break End::Done(o),
                Some(ReplyEvent::Failed(m)) => break End::Failed(m),
                None => break End::Failed("the reply stopped unexpectedly".into()),
            },
            _ = stop.cancelled() => break End::Stopped,
            _ = s.hard_stop.cancelled() => break End::Cut,
        }
    };
    // Dropping the reply cancels a turn still running; the bot stores it as interrupted.
    drop(reply);
    done.cancel();
    shown.cancel();
    typing.abort();
    let streamed = display.await.unwrap_or(None);
    let mut made = ReplyButtons::default();
    let (final_text, result) = match end {
        End::Done(o) => {
            made = buttons(&o);
            s.metrics.replies.fetch_add(1, Relaxed);
            s.metrics.first_token.observe(o.stats.ttft_ms / 1000.0);
            s.metrics
                .reply_time
                .observe(started.elapsed().as_secs_f64());
            s.metrics
                .tokens_per_second_milli
                .store((o.stats.tokens_per_second * 1000.0) as u64, Relaxed);
            let completed = Streamed::Completed {
                ended: o.ended,
                handoff: o.handoff,
            };
            let t = if o.text.trim().is_empty() {
                "…".to_string()
            } else {
                o.text
            };
            (t, completed)
        }
        End::Stopped if text.trim().is_empty() => (String::new(), Streamed::Stopped),
        End::Stopped => (format!("{text}\n\n_(stopped)_"), Streamed::Stopped),
        End::Cut if text.trim().is_empty() => (String::new(), Streamed::Cut),
        End::Cut => (
            format!("{text}\n\n_(interrupted: the bot is restarting; it will answer again)_"),
            Streamed::Cut,
        ),
        End::Failed(m) if text.trim().is_empty() => (
            format!("Sorry, I could not answer that: {m}. Please try again."),
            Streamed::Failed,
        ),
        End::Failed(m) => (format!("{text}\n\n_(cut short: {m})_"), Streamed::Failed),
    };
    if !final_text.is_empty() {
        deliver(s, target, streamed, &final_text, reply_to, &made).await;
    }
    result
}

/// Send the final text: rendered, split, the first chunk replacing the streamed message,
/// `buttons.under` under the last chunk, then the "Did this help?" follow-up carrying
/// `buttons.rating`. What Telegram does not take through an outage (or all of it, when earlier
/// replies to this chat still wait) is kept and sent later ([`super::undelivered`]).
pub async fn deliver(
    s: &Sender,
    target: Target,
    streamed: Option<i64>,
    text: &str,
    reply_to: Option<i64>,
    buttons: &ReplyButtons,
) {
    let mut items: Vec<Item> = split_markdown(text, CHUNK_BUDGET)
        .into_iter()
        .map(|chunk| (chunk, None))
        .collect();
    if let Some(last) = items.last_mut() {
        last.1.clone_from(&buttons.under);
    }
    if let Some(rating) = &buttons.rating {
        items.push((RATING_QUESTION.to_string(), Some(rating.clone())));
    }
    tracing::debug!(
        chat = target.chat,
        messages = items.len(),
        "sending the final reply"
    );
    if super::undelivered::waiting(&s.state, target.chat) {
        // Replies Telegram did not take yet come first: this one queues behind them (the
        // chat's worker sends them in order).
        super::undelivered::keep(s, target, &items, reply_to);
        return;
    }
    for (i, (chunk, made)) in items.iter().enumerate() {
        let html = markdown_to_html(chunk);
        let html = (!html.trim().is_empty()).then_some(html);
        let markup = made.as_ref().map(|m| &m.markup);
        let sent = match (i, streamed) {
            (0, Some(id)) => {
                match s
                    .out
                    .edit(
                        target,
                        Author::Bot,
                        id,
                        html.as_deref(),
                        chunk,
                        super::outbox::Delivery::Must,
                        markup,
                    )
                    .await
                {
                    Ok(()) => Ok(id),
                    Err(SendError::Api(e)) => {
                        tracing::warn!(chat = target.chat, error = %e, "could not finish the streamed message; sending it anew");
                        s.out
                            .send_with(
                                target,
                                Author::Bot,
                                html.as_deref(),
                                chunk,
                                reply_to,
                                markup,
                            )
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            _ => {
                s.out
                    .send_with(
                        target,
                        Author::Bot,
                        html.as_deref(),
                        chunk,
                        if i == 0 { reply_to } else { None },
                        markup,
                    )
                    .await
            }
        };
        match sent {
            Ok(id) => {
                if let Some(m) = made {
                    m.sent_as(&s.state, id);
                }
            }
            Err(SendError::Handoff(_)) => return,
            Err(SendError::Api(e)) if super::undelivered::retry_later(&e) => {
                // Every attempt failed on an outage: keep the rest for later, not drop it.
                tracing::warn!(chat = target.chat, error = %e, "could not send a reply chunk");
                let reply_to = if i == 0 { reply_to } else { None };
                super::undelivered::keep(s, target, &items[i..], reply_to);
                return;
            }
            Err(e) => {
                tracing::error!(chat = target.chat, error = %e, "could not send a reply chunk");
                return;
            }
        }
    }
}

/// Show the newest partial text whenever the pacer allows. Returns the streamed message id
/// (edit mode).
async fn display_loop(
    s: Sender,
    target: Target,
    mut mode: Mode,
    mut rx: watch::Receiver<String>,
    shown: CancellationToken,
    done: CancellationToken,
) -> Option<i64> {
    if mode == Mode::Off {
        return None;
    }
    let draft_id = (target.chat.unsigned_abs() as i64 % 1_000_000) * 1000
        + (rand::random::<u16>() as i64 % 1000)
        + 1;
    let mut message: Option<i64> = None;
    let mut last_shown = String::new();
    let mut last_sent: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return message },
            _ = done.cancelled() => return message,
        }
        // Wait out the chat's interval here, where the end of the reply can interrupt the
        // wait: a preview reserved in the outbox would delay the final message by one more
        // interval.
        if let Some(t) = last_sent {
            let interval =
                s.cfg.chat_interval(target.group) * s.out.pacer().chat_slowdown(target.chat);
            tokio::select! {
                _ = tokio::time::sleep_until(t + interval) => {}
                _ = done.cancelled() => return message,
            }
        }
        let mut text = rx.borrow_and_update().clone();
        if utf16_len(&text) > PREVIEW_LIMIT {
            text = text
                .chars()
                .scan(0, |n, c| {
                    *n += c.len_utf16();
                    (*n < PREVIEW_LIMIT).then_some(c)
                })
                .collect::<String>()
                + "…";
        }
        if text == last_shown || done.is_cancelled() {
            continue;
        }
        if mode == Mode::Draft {
            match s.out.draft(target, draft_id, &text).await {
                Ok(()) => {
                    s.drafts.store(1, Relaxed);
                    shown.cancel();
                }
                Err(SendError::Api(e)) if e.is_unknown_method() => {
                    // Show this very text by a message now, not only at the next token.
                    tracing::info!(
                        "the Bot API server has no sendMessageDraft; streaming by edits"
                    );
                    s.drafts.store(2, Relaxed);
                    mode = Mode::Edit;
                }
                Err(SendError::Handoff(_)) => return None,
                Err(_) => continue,
            }
        }
        match mode {
            Mode::Draft => {}
            Mode::Edit => {
                let r = match message {
                    None => s
                        .out
                        .send(target, Author::Bot, None, &text, None)
                        .await
                        .map(|id| {
                            message = Some(id);
                        }),
                    Some(id) => {
                        s.out
                            .edit(
                                target,
                                Author::Bot,
                                id,
                                None,
                                &text,
                                super::outbox::Delivery::BestEffort,
                                None,
                            )
                            .await
                    }
                };
                match r {
                    Ok(()) => shown.cancel(),
                    Err(SendError::Handoff(_)) => return message,
                    Err(_) => continue,
                }
            }
            Mode::Off => return None,
        }
        last_sent = Some(tokio::time::Instant::now());
        last_shown = text;
    }
}

/// "typing…" every `typing_interval_ms` until text shows.
async fn typing_loop(s: Sender, target: Target, shown: CancellationToken) {
    let every = Duration::from_millis(s.cfg.pacing.typing_interval_ms);
    loop {
        if shown.is_cancelled()
            || s.out.typing(target).await.is_err() && s.out.in_handoff(target.chat)
        {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shown.cancelled() => return,
        }
    }
}
