//! The scripted conversations of `parlor bench`, played through a [`Bot`] on any engine (the
//! in-process llama.cpp engine, or a peer server through the remote engine) so both are
//! measured with the same prompts, sessions and timing: one session's turns, several chats at
//! once, a new chat with a long persona.

use super::llama::BenchError;
use super::{Report, median};
use crate::bot::{Bot, ReplyEvent, TurnOptions};
use crate::chat::SessionId;
use crate::engine::Sampling;
use crate::persona::Persona;
use std::path::Path;
use std::time::{Duration, Instant};

/// The bench persona's system prompt.
pub const SYSTEM: &str = "You are a helpful assistant.";

/// A greedy persona with `system` and 48-token replies, written to `dir/bench.yaml`.
pub fn persona(dir: &Path, system: &str) -> Result<Persona, BenchError> {
    let path = dir.join("bench.yaml");
    let text = format!(
        "name: Bench\nsystem: {}\nsampling:\n  temperature: 0\n  max_tokens: 48\n",
        serde_json::to_string(system).unwrap_or_default()
    );
    std::fs::write(&path, text)?;
    Ok(Persona::load(&path)?)
}

/// Timings of one turn seen from the front end.
pub struct Timed {
    /// Request to first text.
    pub ttft: Duration,
    /// When the first text arrived.
    pub first: Instant,
    /// When the last piece of text arrived.
    pub last: Instant,
    /// When `Done` arrived (the reply stored).
    pub done: Instant,
    /// Generated tokens.
    pub completion: u32,
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Prompt tokens taken from the KV cache instead of evaluated.
    pub reused: u32,
}

/// One greedy turn of at most `max_tokens`, timed.
pub async fn timed_turn(
    bot: &Bot,
    session: SessionId,
    text: &str,
    max_tokens: u32,
) -> Result<Timed, BenchError> {
    let start = Instant::now();
    let mut reply = bot.turn_with(
        session,
        text,
        TurnOptions {
            sampling: Some(Sampling::greedy()),
            max_tokens: Some(max_tokens),
            ..Default::default()
        },
    );
    let (mut first, mut last) = (None, None);
    loop {
        match reply.next().await {
            Some(ReplyEvent::Token(_)) => {
                let now = Instant::now();
                first.get_or_insert(now);
                last = Some(now);
            }
            Some(ReplyEvent::Queued { .. }) => {}
            Some(ReplyEvent::Done(o)) => {
                let done = Instant::now();
                let first = first.unwrap_or(done);
                return Ok(Timed {
                    ttft: first - start,
                    first,
                    last: last.unwrap_or(done),
                    done,
                    completion: o.stats.completion_tokens,
                    prompt_tokens: o.stats.prompt_tokens,
                    reused: o.stats.reused_tokens,
                });
            }
            Some(ReplyEvent::Failed(e)) => return Err(BenchError::Turn(e)),
            None => return Err(BenchError::Turn("reply ended early".into())),
        }
    }
}

/// The message of turn `i` of the turns section.
pub fn turn_text(i: usize) -> String {
    format!("Tell me one fact about the number {i}.")
}

/// A session played `plays` times.
pub struct Played {
    /// Median time to first token of each turn, milliseconds.
    pub ttft_ms: Vec<f64>,
    /// (prompt tokens evaluated, prompt tokens) of each turn of the first play.
    pub evaluated: Vec<(u32, u32)>,
}

/// How many times the turns sections play their session (one with `--quick`): parlor's and
/// the peer's turn-30 rows are each the median of this many samples, and single samples on a
/// shared 2-core VM moved 51-104 ms between consecutive turns of one session.
pub fn plays(quick: bool) -> usize {
    if quick { 1 } else { 5 }
}

/// Play a session of `n` turns (48-token replies) `plays` times, waiting `pause` before each
/// message after the first; each turn's time to first token is the median over the plays.
pub async fn play_session(
    bot: &Bot,
    n: usize,
    plays: usize,
    pause: Duration,
) -> Result<Played, BenchError> {
    let mut samples = vec![Vec::new(); n];
    let mut evaluated = Vec::new();
    for play in 0..plays {
        let s = bot.new_session(None)?;
        for i in 1..=n {
            if i > 1 {
                tokio::time::sleep(pause).await;
            }
            let t = timed_turn(bot, s.id, &turn_text(i), 48).await?;
            samples[i - 1].push(t.ttft.as_secs_f64() * 1000.0);
            if play == 0 {
                evaluated.push((t.prompt_tokens.saturating_sub(t.reused), t.prompt_tokens));
            }
        }
    }
    Ok(Played {
        ttft_ms: samples.into_iter().map(median).collect(),
        evaluated,
    })
}

/// Topics of the concurrent chats.
const TOPICS: [&str; 8] = [
    "a dragon",
    "a lighthouse",
    "a robot",
    "a baker",
    "a pirate",
    "a comet",
    "a fox",
    "a violin",
];

/// `n` chats started at once.
pub struct Chats {
    /// Aggregate generation, tokens per second (first text of any chat to the last `Done`).
    pub aggregate_tps: f64,
    /// The slowest chat's time to first text, milliseconds.
    pub worst_ttft_ms: f64,
    /// Each chat's prompt tokens.
    pub prompt_lens: Vec<usize>,
    /// The fewest prompt tokens a chat took from the cache.
    pub fewest_reused: u32,
}

impl Chats {
    /// Add the rows "{label}: aggregate generation" and "{label}: worst time to first token"
    /// to section `sec` of `report`, and note both numbers under `keys` (aggregate, worst) for
    /// the ratio targets.
    pub fn add_rows(
        &self,
        report: &mut Report,
        sec: &str,
        label: &str,
        keys: Option<(&str, &str)>,
    ) {
        let agg = format!("{label}: aggregate generation");
        report.add(sec, &agg, self.aggregate_tps, "tok/s");
        let worst = format!("{label}: worst time to first token");
        report.add(sec, &worst, self.worst_ttft_ms, "ms");
        if let Some((agg, worst)) = keys {
            report.note(agg, self.aggregate_tps);
            report.note(worst, self.worst_ttft_ms);
        }
    }
}

/// Start `n` new chats at once (64-token stories) and time them.
pub async fn chats_at_once(bot: &Bot, n: usize) -> Result<Chats, BenchError> {
    let texts = TOPICS.iter().cycle().take(n);
    texts_at_once(bot, texts.map(|t| format!("Write a long story about {t}."))).await
}

/// Four customers of a support bot at once: one chat first (a bot that has served someone has
/// evaluated its persona prefix once), then a new chat for each of [`SUPPORT_CHATS`] at once.
pub async fn support_chats_at_once(bot: &Bot) -> Result<Chats, BenchError> {
    new_chats(bot, &NEW_CHAT_MESSAGES[..1]).await?;
    texts_at_once(bot, SUPPORT_CHATS.iter().map(|t| t.to_string())).await
}

/// Start a new chat for each of `texts` at once (64-token replies) and time them.
async fn texts_at_once(
    bot: &Bot,
    texts: impl Iterator<Item = String>,
) -> Result<Chats, BenchError> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for text in texts {
        let bot = bot.clone();
        let s = bot.new_session(None)?;
        tasks.push(tokio::spawn(async move {
            timed_turn(&bot, s.id, &text, 64).await
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.map_err(|e| BenchError::Turn(e.to_string()))??);
    }
    let worst = results
        .iter()
        .map(|r| (r.first - start).as_secs_f64())
        .fold(0.0, f64::max)
        * 1000.0;
    let first = results.iter().map(|r| r.first).min().unwrap_or(start);
    let last = results.iter().map(|r| r.done).max().unwrap_or(start);
    let tokens: u32 = results.iter().map(|r| r.completion.saturating_sub(1)).sum();
    Ok(Chats {
        aggregate_tps: tokens as f64 / (last - first).as_secs_f64().max(1e-9),
        worst_ttft_ms: worst,
        prompt_lens: results.iter().map(|r| r.prompt_tokens as usize).collect(),
        fewest_reused: results.iter().map(|r| r.reused).min().unwrap_or(0),
    })
}

/// The persona of the new-chat section: the shipped acme-support persona (a ~600-token
/// prefix: system prompt with its facts, three example turns, the greeting), written to
/// `dir/acme-support.yaml`.
pub fn support_persona(dir: &Path) -> Result<Persona, BenchError> {
    let path = dir.join("acme-support.yaml");
    std::fs::write(&path, support_persona_text()?)?;
    Ok(Persona::load(&path)?)
}

/// The shipped acme-support persona's YAML with grounding off: grounded mode answers a
/// question its facts do not cover with its `not_sure` text, without the model, and the
/// section measures what the model's prompt costs.
pub fn support_persona_text() -> Result<String, BenchError> {
    let text = crate::home::BUILTIN_PERSONAS
        .iter()
        .find(|(name, _)| *name == "acme-support")
        .map(|(_, text)| *text)
        .ok_or_else(|| BenchError::Turn("the acme-support persona is not built in".into()))?;
    let grounded = "grounding:\n  enabled: true\n";
    if !text.contains(grounded) {
        return Err(BenchError::Turn(
            "the acme-support persona no longer says `grounding: enabled: true`".into(),
        ));
    }
    Ok(text.replace(grounded, "grounding:\n  enabled: false\n"))
}

/// New-chat messages: none is answered by the persona's FAQ or rules, none pulls a fact into
/// the system prompt, so each new chat's prompt starts with the same persona prefix.
pub const NEW_CHAT_MESSAGES: [&str; 3] = [
    "My router gets very warm. Is that normal?",
    "Can I put the router in a cupboard?",
    "Is the case made of plastic or metal?",
];

/// The four support chats at once ([`support_chats_at_once`]): like [`NEW_CHAT_MESSAGES`], each
/// starts with the same persona prefix.
pub const SUPPORT_CHATS: [&str; 4] = [
    "Can I put the router in a cupboard?",
    "Is the case made of plastic or metal?",
    "Are the antennas removable?",
    "How heavy is the device?",
];

/// Time to first token of a new chat's first message (16-token reply), `messages.len()` new
/// sessions one after the other; returns each time in milliseconds.
pub async fn new_chats(bot: &Bot, messages: &[&str]) -> Result<Vec<f64>, BenchError> {
    Ok(new_chats_reusing(bot, messages)
        .await?
        .into_iter()
        .map(|(ms, _)| ms)
        .collect())
}

/// [`new_chats`] with the prompt tokens each took from the cache instead of evaluating them.
pub async fn new_chats_reusing(
    bot: &Bot,
    messages: &[&str],
) -> Result<Vec<(f64, u32)>, BenchError> {
    let mut out = Vec::new();
    for text in messages {
        let s = bot.new_session(None)?;
        let t = timed_turn(bot, s.id, text, 16).await?;
        out.push((t.ttft.as_secs_f64() * 1000.0, t.reused));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{NEW_CHAT_MESSAGES, SUPPORT_CHATS, support_persona};
    use crate::chat::ChatMessage;
    use crate::persona::MacroContext;

    /// A message that pulls a fact into the system prompt has a persona prefix of its own: the
    /// new-chat section and the four support chats would then measure a prefix no other chat
    /// shares.
    #[test]
    fn new_chat_messages_pull_no_facts_into_the_system_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let persona = support_persona(dir.path()).unwrap();
        let ctx = MacroContext {
            user: "user".into(),
            vars: std::collections::BTreeMap::default(),
            seed: 0,
        };
        let count = |m: &[ChatMessage]| {
            Ok(m.iter()
                .map(|m| m.content.split_whitespace().count() as u32 * 2 + 4)
                .sum())
        };
        let mut bad = Vec::new();
        for text in NEW_CHAT_MESSAGES.iter().chain(&SUPPORT_CHATS) {
            let p = persona
                .render_prompt(&[], text, &ctx, 4096, &count)
                .unwrap();
            let d = persona.intercept(text, true, &ctx);
            if !p.injected.is_empty() || d.reply.is_some() || d.inject.is_some() {
                bad.push((text, p.injected, d.reply.is_some()));
            }
        }
        assert!(bad.is_empty(), "{bad:?}");
    }
}
