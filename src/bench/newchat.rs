//! The new-chat section of `parlor bench`: a support bot's persona prefix (system prompt with
//! its facts, example turns, greeting: ~600 tokens for the shipped acme-support persona) is
//! the same for every customer. Measured: a new chat's first token when nothing has evaluated
//! the prefix yet, when another chat in the running engine already has, and in a fresh
//! `parlor ask` process (prefix state on disk), against the llama.cpp floor for the same
//! message with the prefix cached.

use super::Report;
use super::floor::{PairedFloor, QUIET};
use super::llama::{BenchError, LlamaBench};
use super::median;
use super::play::{NEW_CHAT_MESSAGES, new_chats_reusing, support_persona, support_persona_text};
use super::resume::timed_ask;
use super::targets;
use crate::bot::Bot;
use crate::chat::{ChatMessage, Role};
use crate::engine::{EngineError, EngineSettings, LlamaEngine};
use crate::persona::{MacroContext, Persona};
use crate::store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// (persona prefix tokens, whole prompt tokens) of a new chat's first `message`: the prefix is
/// what the prompts for two different first messages share (the chat template's boundary
/// where the first user message begins).
pub fn prefix_split(
    engine: &LlamaEngine,
    persona: &Persona,
    message: &str,
) -> Result<(usize, usize), EngineError> {
    let ctx = MacroContext {
        user: "user".into(),
        vars: std::collections::BTreeMap::default(),
        seed: 0,
    };
    let count = |m: &[ChatMessage]| engine.tokenize_prompt(m).map(|t| t.len() as u32);
    let prompt = persona.render_prompt(&[], message, &ctx, engine.settings().context, &count)?;
    let mut preamble = prompt.messages.clone();
    preamble.pop();
    let with = |text: &str| {
        let mut m = preamble.clone();
        m.push(ChatMessage::new(Role::User, text));
        engine.tokenize_prompt(&m)
    };
    let (a, b) = (with("A")?, with("B")?);
    let shared = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    Ok((shared, engine.tokenize_prompt(&prompt.messages)?.len()))
}

/// Run the section into `report`.
pub async fn new_chat(cfg: &LlamaBench, report: &mut Report) -> Result<(), BenchError> {
    let dir = tempfile::tempdir()?;
    let persona = support_persona(dir.path())?;
    // Like a bot: one slot, saved states (and prefix states) beside the store.
    let mut s = EngineSettings::new(&cfg.model_path, "bench");
    s.threads = Some(cfg.threads);
    s.state_dir = Some(dir.path().join("kv-state"));
    let e = Arc::new(LlamaEngine::load(s)?);
    let store = Store::open(&dir.path().join("db"))?;
    let bot = Bot::new(persona.clone(), e.clone(), store);
    let sec = "newchat";
    let first = new_chats_reusing(&bot, &NEW_CHAT_MESSAGES[..1]).await?;
    let (prefix, total) = prefix_split(&e, &persona, NEW_CHAT_MESSAGES[1])?;
    // New chats in pairs: one on an idle engine, then one right after its reply (the engine
    // first copies the state of the chat it replaces into memory, 3-12 ms on the AMD EPYC VM,
    // and writes it to disk once idle; a new 14.7 MB file and its checksum, 15-17 ms, until
    // 939eaac). Beside each pair one floor sample, alternating which goes first, so both
    // sides of the ratio sample the same moments of a shared VM
    // (see [`PairedFloor`]; a floor in a block of its own put the same build at 0.67x and 1.65x
    // within an hour). Chats and floor samples begin on a quiet engine: right after a reply the
    // engine pre-fills that conversation's next turn and, idle a while, saves it, and a floor
    // sample beside that work measured 10-20% slower than parlor's own chats. The chats cycle
    // through the messages, so no chat shares more than the persona prefix with the one before.
    let floor_turn = PairedFloor::start(e.clone(), prefix, total - prefix).await?;
    let pairs = if cfg.quick { 3 } else { 9 };
    let (mut idle, mut later, mut floors) = (Vec::new(), Vec::new(), Vec::new());
    let m = NEW_CHAT_MESSAGES.len();
    for i in 0..pairs {
        tokio::time::sleep(QUIET).await;
        if i % 2 == 1 {
            floors.push(floor_turn.sample(Duration::ZERO).await?);
        }
        // From the second message: the first chat's slot still holds the first message's
        // whole prompt, which a new chat with the same message would reuse entirely.
        let texts = [
            NEW_CHAT_MESSAGES[(2 * i + 1) % m],
            NEW_CHAT_MESSAGES[(2 * i + 2) % m],
        ];
        let two = new_chats_reusing(&bot, &texts).await?;
        idle.push(two[0]);
        later.push(two[1]);
        if i % 2 == 0 {
            tokio::time::sleep(QUIET).await;
            floors.push(floor_turn.sample(Duration::ZERO).await?);
        }
    }
    drop(floor_turn);
    let reused = later
        .iter()
        .chain(&idle)
        .map(|&(_, r)| r)
        .min()
        .unwrap_or(0);
    let times = |v: Vec<(f64, u32)>| median(v.into_iter().map(|(ms, _)| ms).collect());
    let (idle, shared, floor) = (times(idle), times(later), median(floors));
    drop(bot);
    drop(e);
    report.add(
        sec,
        &format!("new chat, first token, nothing cached ({total}-token prompt)"),
        first[0].0,
        "ms",
    );
    report.add(
        sec,
        &format!("new chat, first token, on an idle engine (median of {pairs})"),
        idle,
        "ms",
    );
    report.add(
        sec,
        &format!("new chat, first token, right after another chat's reply (median of {pairs})"),
        shared,
        "ms",
    );
    // Says whether the prefix was shared at all (0: each chat evaluated it).
    report.add(
        sec,
        "new chat after another chat: prompt tokens taken from the cache (fewest)",
        f64::from(reused),
        "tok",
    );
    report.add(
        sec,
        &format!(
            "llama.cpp floor: the same message with its {prefix}-token prefix cached (median of {pairs}, between the chats)"
        ),
        floor,
        "ms",
    );
    report.add(
        sec,
        "new chat on an idle engine / the same message with the prefix cached",
        idle / floor,
        "x",
    );
    report.note(targets::NEWCHAT_PARLOR, shared);
    report.note(targets::NEWCHAT_CACHED, floor);
    fresh_process(cfg, &support_persona_text()?, report)
}

/// New chats in fresh `parlor ask` processes: the first evaluates the prefix (and saves it),
/// the next find it on disk.
fn fresh_process(cfg: &LlamaBench, persona: &str, report: &mut Report) -> Result<(), BenchError> {
    let home = tempfile::tempdir()?;
    let h = home.path();
    write_home(cfg, h, persona)?;
    let mut times = Vec::new();
    for text in NEW_CHAT_MESSAGES {
        times.push(timed_ask(cfg, h, "acme", None, text)?.0);
    }
    let sec = "newchat";
    report.add(
        sec,
        "new chat in a fresh `parlor ask`, first ever (process start to first token)",
        times[0],
        "ms",
    );
    report.add(
        sec,
        "new chat in a fresh `parlor ask`, prefix evaluated before (median)",
        median(times[1..].to_vec()),
        "ms",
    );
    Ok(())
}

fn write_home(cfg: &LlamaBench, h: &Path, persona: &str) -> Result<(), BenchError> {
    std::fs::create_dir_all(h.join("personas"))?;
    std::fs::create_dir_all(h.join("bots"))?;
    std::fs::write(h.join("personas/acme-support.yaml"), persona)?;
    std::fs::write(
        h.join("bots/acme.yaml"),
        format!(
            "persona: acme-support\nmodel: {}\nengine:\n  threads: {}\n  context: 4096\n  slots: 1\n",
            serde_json::to_string(&cfg.model_path.display().to_string()).unwrap_or_default(),
            cfg.threads
        ),
    )?;
    Ok(())
}
