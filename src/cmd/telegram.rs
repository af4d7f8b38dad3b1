//! `parlor telegram --bot NAME|PATH [--check]`: run the bot described by the bot YAML's
//! `telegram:` section until SIGTERM or Ctrl+C, or diagnose the setup with `--check`.

use crate::cli::{BotArgs, GlobalArgs};
use crate::config::BotSpec;
use crate::home::Home;
use crate::telegram::{Service, TelegramConfig, Token, api_url};
use anyhow::Context;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Options of `parlor telegram`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bot, persona and model.
    #[command(flatten)]
    pub bot: BotArgs,
    /// Check the setup (token, webhook, model, persona) and exit: 0 all good, 1 problems found.
    #[arg(long)]
    pub check: bool,
}

/// The `telegram:` section of the bot named by `--bot`, validated.
pub fn load_section(global: &GlobalArgs, args: &BotArgs) -> anyhow::Result<TelegramConfig> {
    let name = args
        .bot
        .as_deref()
        .context("`parlor telegram` needs --bot NAME (bots/NAME.yaml) or --bot PATH")?;
    let home = Home::resolve(global.home.as_deref())?;
    let spec = BotSpec::load_from(&home, name)?;
    let where_ = spec
        .path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| name.to_string());
    let cfg = spec.telegram().cloned().with_context(|| {
        format!("\"{where_}\" has no `telegram:` section; add one (see docs/telegram.md)")
    })?;
    let problems = cfg.validate();
    if !problems.is_empty() {
        anyhow::bail!("{where_}: {}", problems.join(&format!("\n{where_}: ")));
    }
    Ok(cfg)
}

fn token(cfg: &TelegramConfig) -> anyhow::Result<Token> {
    match std::env::var(&cfg.token_env) {
        Ok(t) if !t.trim().is_empty() => Ok(Token::new(t)),
        _ => anyhow::bail!(
            "the bot token is missing: set the environment variable \"{}\" to the token @BotFather gave you",
            cfg.token_env
        ),
    }
}

/// Aborts its task when dropped (the retention schedule ends with the bot).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run `parlor telegram`.
pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let cfg = load_section(global, &args.bot)?;
    if args.check {
        return check(global, &args, &cfg).await;
    }
    let token = token(&cfg)?;
    let launched = crate::launch::open_bot(global, &args.bot).await?;
    let url = api_url(&cfg);
    tracing::info!(bot = %launched.bot_name, api = %url, "starting the telegram bot");
    // Hot reload: an edited persona applies to the next turns; an invalid edit keeps the last
    // good persona and is logged (by the watcher).
    let _watch = launched
        .persona_path()
        .map(|path| launched.bot.watch_persona(path, |_| {}));
    let svc = Service::new(launched.bot.clone(), cfg, &url, token)?;
    let metrics = svc.metrics();
    metrics.retention_erased.fetch_add(
        launched.retention_erased as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    let _retention = launched.spec.retention().map(|keep| {
        let m = metrics.clone();
        AbortOnDrop(tokio::spawn(crate::bot::retention_loop(
            launched.bot.clone(),
            keep,
            crate::bot::RETENTION_EVERY,
            move |n| {
                m.retention_erased
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            },
        )))
    });
    let stop = CancellationToken::new();
    tokio::spawn(stop_on_signal(stop.clone()));
    eprintln!(
        "parlor: telegram bot \"{}\" running; Ctrl+C or SIGTERM stops it",
        launched.bot_name
    );
    let ran = svc.run(stop).await;
    launched.bot.close().await;
    ran?;
    Ok(0)
}

/// Cancel `stop` on Ctrl+C or SIGTERM (what systemd and containers send).
pub async fn stop_on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                let _ = tokio::signal::ctrl_c().await;
                stop.cancel();
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stop requested");
    stop.cancel();
}

async fn check(
    global: &GlobalArgs,
    args: &Args,
    cfg: &TelegramConfig,
) -> anyhow::Result<super::ExitCode> {
    let mut problems = 0;
    let mut report = |ok: bool, what: &str, detail: String| {
        if !ok {
            problems += 1;
        }
        println!(
            "{} {what}: {detail}",
            if ok { "ok     " } else { "PROBLEM" }
        );
    };
    report(true, "telegram section", "valid".into());
    let url = api_url(cfg);
    match token(cfg) {
        Err(e) => report(false, "token", e.to_string()),
        Ok(token) => {
            use teloxide::requests::Requester;
            let api = crate::telegram::api::Api::new(&url, token)?;
            let timeout = Duration::from_secs(20);
            let me = tokio::time::timeout(timeout, api.bot().get_me().into_future()).await;
            match me {
                Ok(Ok(me)) => report(
                    true,
                    "token",
                    format!("works: @{}", me.user.username.as_deref().unwrap_or("?")),
                ),
                Ok(Err(e)) => report(
                    false,
                    "token",
                    format!(
                        "{} (check \"{}\" and that {url} is reachable)",
                        api.map_err(e),
                        cfg.token_env
                    ),
                ),
                Err(_) => report(false, "token", format!("{url} did not answer in time")),
            }
            let info =
                tokio::time::timeout(timeout, api.bot().get_webhook_info().into_future()).await;
            match info {
                Ok(Ok(info)) => {
                    let set = info.url.as_ref().map_or("", reqwest::Url::as_str);
                    let pending = info.pending_update_count;
                    let last_err = info.last_error_message.as_deref();
                    let detail = match (&cfg.webhook, set.is_empty()) {
                        (None, true) => format!("none (long polling); {pending} update(s) waiting"),
                        (None, false) => format!(
                            "\"{set}\" is set; polling will delete it; {pending} update(s) waiting"
                        ),
                        (Some(w), _) if w.url == set => {
                            format!("\"{set}\"; {pending} update(s) waiting")
                        }
                        (Some(w), _) => {
                            format!("\"{set}\" now; will be set to \"{}\" at start", w.url)
                        }
                    };
                    report(
                        last_err.is_none(),
                        "webhook",
                        match last_err {
                            Some(e) => format!("{detail}; last delivery error: {e}"),
                            None => detail,
                        },
                    );
                }
                Ok(Err(e)) => report(false, "webhook", api.map_err(e).to_string()),
                Err(_) => report(false, "webhook", format!("{url} did not answer in time")),
            }
        }
    }
    match crate::launch::open_bot(global, &args.bot).await {
        Ok(l) => {
            report(
                true,
                "persona",
                format!("\"{}\" is valid", l.bot.persona().id()),
            );
            report(
                true,
                "model",
                format!("\"{}\" loads", l.bot.engine().model_name()),
            );
        }
        Err(e) => report(false, "persona and model", format!("{e:#}")),
    }
    if let Some(ops) = cfg.operators_chat {
        report(true, "handoff", format!("transcripts go to chat {ops}"));
    } else {
        report(
            true,
            "handoff",
            "no operators_chat: /human only stops the bot in that chat".into(),
        );
    }
    Ok(if problems == 0 { 0 } else { 1 })
}
