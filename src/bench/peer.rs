//! `parlor bench --peer URL`: the turns, concurrency and new-chat sections played again
//! through the remote engine against any OpenAI-compatible server (llama.cpp's llama-server:
//! see docs/bench.md for building and starting it from the same llama.cpp), with the same
//! personas, prompts and sessions, so the table shows parlor/peer ratios from one run. With
//! `--peer-pid`, the peer process's peak memory too (Linux `/proc`).

use super::llama::BenchError;
use super::play::{
    NEW_CHAT_MESSAGES, SYSTEM, chats_at_once, new_chats, persona, play_session, plays,
    support_chats_at_once, support_persona,
};
use super::targets::{self, PAUSES, pause_label};
use super::{Report, median};
use crate::bot::Bot;
use crate::engine::{OpenAiEngine, OpenAiSettings};
use crate::store::Store;
use std::sync::Arc;

/// The peer server.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its OpenAI-compatible base URL, e.g. `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// The model name sent (llama-server serves whatever it loaded under any name).
    pub model: String,
    /// Its process id, to read its peak memory.
    pub pid: Option<u32>,
}

/// The bench sections with a peer side, in the order `parlor bench` runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerSection {
    /// Turn 30's first token, back to back and after a pause.
    Turns,
    /// Four short chats and four support chats at once.
    Concurrency,
    /// A support bot's new chat after another.
    NewChat,
    /// The peer's peak memory (read after parlor's restart section).
    Resume,
}

impl PeerSection {
    /// Every section, in the order `parlor bench` runs them.
    pub const ALL: [PeerSection; 4] = [
        PeerSection::Turns,
        PeerSection::Concurrency,
        PeerSection::NewChat,
        PeerSection::Resume,
    ];
}

fn bot_for(
    peer: &Peer,
    persona: crate::persona::Persona,
    dir: &std::path::Path,
) -> Result<Bot, BenchError> {
    let engine = OpenAiEngine::new(OpenAiSettings {
        base_url: peer.base_url.clone(),
        model: peer.model.clone(),
        api_key: None,
        context: 4096,
        timeout_secs: 120,
    })?;
    let store = Store::open(&dir.join("db"))?;
    Ok(Bot::new(persona, Arc::new(engine), store))
}

/// Run the peer's side of bench section `section` into `report` (rows in section `peer`,
/// numbers noted for the ratio targets). [`super::llama::run_llama_sections`] calls it right
/// after parlor's side of each section, so both sides of a parlor/peer ratio are measured
/// minutes apart rather than a whole run apart (the peer's four short chats made 109 tok/s at
/// the end of one full run and 160 in the run before: the VM's speed drifts that much).
/// With `quick`, fewer turns and plays (a smoke run).
pub async fn run_peer_section(
    peer: &Peer,
    section: PeerSection,
    quick: bool,
    report: &mut Report,
) -> Result<(), BenchError> {
    match section {
        PeerSection::Turns => peer_turns(peer, quick, report).await,
        PeerSection::Concurrency => peer_concurrency(peer, report).await,
        PeerSection::NewChat => peer_new_chat(peer, report).await,
        PeerSection::Resume => {
            if let Some(mib) = peer.pid.and_then(peak_mib) {
                report.add("peer", "peak memory of the peer process", mib, "MiB");
                report.note(targets::PEAK_PEER, mib);
            }
            Ok(())
        }
    }
}

/// Turn 30 (10 with `quick`) of the turns section's session, at each pause.
async fn peer_turns(peer: &Peer, quick: bool, report: &mut Report) -> Result<(), BenchError> {
    let sec = "peer";
    let dir = tempfile::tempdir()?;
    let bot = bot_for(peer, persona(dir.path(), SYSTEM)?, dir.path())?;
    let n = if quick { 10 } else { 30 };
    let plays = plays(quick);
    for pause in PAUSES {
        let played = play_session(&bot, n, plays, pause).await?;
        let last = played.ttft_ms[n - 1];
        report.add(
            sec,
            &format!("time to first token, turn {n}, {}", pause_label(pause)),
            last,
            "ms",
        );
        report.note(&targets::turns_key("peer", pause), last);
    }
    Ok(())
}

/// Four short chats, then four support chats, at once.
async fn peer_concurrency(peer: &Peer, report: &mut Report) -> Result<(), BenchError> {
    let sec = "peer";
    let dir = tempfile::tempdir()?;
    let bot = bot_for(peer, persona(dir.path(), SYSTEM)?, dir.path())?;
    let keys = Some((targets::CHATS4_AGG_PEER, targets::CHATS4_WORST_PEER));
    chats_at_once(&bot, 4)
        .await?
        .add_rows(report, sec, "4 chats", keys);
    let dir = tempfile::tempdir()?;
    let bot = bot_for(peer, support_persona(dir.path())?, dir.path())?;
    let keys = Some((targets::SUPPORT4_AGG_PEER, targets::SUPPORT4_WORST_PEER));
    support_chats_at_once(&bot)
        .await?
        .add_rows(report, sec, "4 support chats", keys);
    Ok(())
}

/// A support bot's first chat, then new chats after it.
async fn peer_new_chat(peer: &Peer, report: &mut Report) -> Result<(), BenchError> {
    let sec = "peer";
    let dir = tempfile::tempdir()?;
    let bot = bot_for(peer, support_persona(dir.path())?, dir.path())?;
    let first = new_chats(&bot, &NEW_CHAT_MESSAGES[..1]).await?;
    let later = median(new_chats(&bot, &NEW_CHAT_MESSAGES[1..]).await?);
    report.add(sec, "new chat, first token, first ever", first[0], "ms");
    report.add(
        sec,
        "new chat, first token, after another chat",
        later,
        "ms",
    );
    report.note(targets::NEWCHAT_PEER, later);
    if let Some(ours) = report.value(targets::NEWCHAT_PARLOR) {
        report.add(
            sec,
            "new chat first token, parlor / peer",
            ours / later,
            "x",
        );
    }
    Ok(())
}

/// Peak resident memory (VmHWM) of process `pid`, MiB.
fn peak_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
