//! `parlor ask`: one question, the reply streamed to stdout (or one JSON object with `--json`).
//! `--session NAME` continues a conversation across invocations. On a terminal the streamed
//! reply shows control characters inert ([`crate::sanitize`]).

use crate::bot::{ReplyEvent, TurnOptions};
use crate::cli::{BotArgs, GlobalArgs};
use crate::launch;
use anyhow::Context as _;
use std::io::{IsTerminal, Read, Write};

/// Options of `parlor ask`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bot, persona and model.
    #[command(flatten)]
    pub bot: BotArgs,
    /// Continue (or start) the session with this name; default: a new session.
    #[arg(long, short = 's')]
    pub session: Option<String>,
    /// Sampling seed (replaces the persona's).
    #[arg(long)]
    pub seed: Option<u32>,
    /// Sampling temperature, 0 = greedy (replaces the persona's).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Reply length cap in tokens (replaces the persona's).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// Print one JSON object at the end instead of streaming text.
    #[arg(long)]
    pub json: bool,
    /// Pick the offered "did you mean" choice with this FAQ entry id (in `--session`), instead
    /// of asking a question.
    #[arg(long, value_name = "ID", conflicts_with = "text")]
    pub choose: Option<String>,
    /// The message; read from stdin when absent.
    pub text: Vec<String>,
}

/// Run `parlor ask`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let text = if args.choose.is_some() {
        String::new()
    } else if args.text.is_empty() {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("could not read the message from stdin")?;
        s
    } else {
        args.text.join(" ")
    };
    let text = text.trim().to_string();
    anyhow::ensure!(
        !text.is_empty() || args.choose.is_some(),
        "nothing to ask: give the message as an argument or on stdin"
    );
    if let Some(t) = args.temperature {
        anyhow::ensure!(
            (0.0..=2.0).contains(&t),
            "--temperature {t} is out of range (0.0 to 2.0)"
        );
    }

    let launched = launch::open_bot_for(global, &args.bot, args.session.as_deref()).await?;
    let bot = launched.bot;
    let session = match &args.session {
        Some(name) => bot.open_session(name)?,
        None => bot.new_session(None)?,
    };
    // Flags adjust the sampling of the persona speaking in the session (a rule may have
    // switched it); without flags the persona's own settings apply.
    let sampling = (args.seed.is_some() || args.temperature.is_some()).then(|| {
        let mut sampling = bot.session_persona(session.id).sampling().clone();
        if let Some(seed) = args.seed {
            sampling.seed = seed;
        }
        if let Some(t) = args.temperature {
            sampling.temperature = t;
        }
        sampling
    });
    let opts = TurnOptions {
        sampling,
        max_tokens: args.max_tokens,
        ..Default::default()
    };

    let notice = bot.retrieval_notice();
    if let Some(n) = &notice
        && !args.json
    {
        eprintln!("note: {n}");
    }
    let mut reply = match &args.choose {
        Some(id) => bot.choose(session.id, id),
        None => bot.turn_with(session.id, &text, opts),
    };
    let mut out = std::io::stdout().lock();
    // On a terminal the reply is shown inert (a model can write escape sequences); a pipe or
    // a file gets it exact.
    let terminal = out.is_terminal();
    let outcome = loop {
        let ev = tokio::select! {
            ev = reply.next() => ev,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the reply cancels the turn; the bot stores it as interrupted.
                drop(reply);
                bot.close().await;
                eprintln!("\ninterrupted");
                return Ok(130);
            }
        };
        match ev {
            Some(ReplyEvent::Token(t)) if !args.json => {
                out.write_all(crate::sanitize::for_output(&t, terminal).as_bytes())?;
                out.flush()?;
            }
            Some(ReplyEvent::Token(_)) => {}
            Some(ReplyEvent::Queued { position }) if !args.json => {
                eprintln!("(waiting for the model: position {position})");
            }
            Some(ReplyEvent::Queued { .. }) => {}
            Some(ReplyEvent::Done(outcome)) => break outcome,
            Some(ReplyEvent::Failed(msg)) => anyhow::bail!("{msg}"),
            None => anyhow::bail!("the turn ended without a reply"),
        }
    };
    // Before printing, so that a script that runs `ask` again in the same session as soon as
    // this one exits finds the conversation's state saved.
    bot.close().await;
    if args.json {
        let s = &outcome.stats;
        let obj = serde_json::json!({
            "reply": outcome.text,
            "session": session.name,
            "source": outcome.source,
            "prompt_tokens": s.prompt_tokens,
            "reused_tokens": s.reused_tokens,
            "completion_tokens": s.completion_tokens,
            "ttft_ms": (s.ttft_ms * 10.0).round() / 10.0,
            "tokens_per_second": (s.tokens_per_second * 10.0).round() / 10.0,
            "trimmed_messages": s.trimmed_messages,
            "finish": s.finish,
            "injected": s.injected,
            "persona": outcome.persona,
            "session_ended": outcome.ended,
            "handoff": outcome.handoff,
            "offer_handoff": outcome.offer_handoff,
            "choices": outcome.choices,
            "match": outcome.retrieval,
            "retrieval_notice": notice,
        });
        writeln!(out, "{obj}")?;
    } else {
        writeln!(out)?;
        if outcome.stats.trimmed_messages > 0 {
            eprintln!(
                "note: {} older messages were left out to fit the {}-token context window",
                outcome.stats.trimmed_messages, outcome.stats.context_window
            );
        }
    }
    Ok(0)
}
