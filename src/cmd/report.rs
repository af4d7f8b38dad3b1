//! `parlor report [--bot NAME] [--since DATE]`: what the support owner should act on, from the
//! bot's stored history (`support::report`): unanswered questions grouped, handoffs with their
//! trigger, "not sure" replies, FAQ hit counts. Markdown, or `--json`.

use crate::bot::Archive;
use crate::chat::ReplySource;
use crate::cli::{BotArgs, GlobalArgs};
use crate::home::Home;
use crate::launch;
use crate::support::report;
use anyhow::Context as _;

/// Options of `parlor report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Bot name (bots/NAME.yaml) or path (default: `terminal`).
    #[arg(long, short = 'b')]
    pub bot: Option<String>,
    /// Only conversations from this day on (YYYY-MM-DD, local time).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

/// Run `parlor report`.
pub fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<super::ExitCode> {
    let since = match &args.since {
        Some(d) => Some(parse_day(d)?),
        None => None,
    };
    let home = Home::resolve(global.home.as_deref())?;
    let plan = launch::plan(
        home,
        &BotArgs {
            bot: args.bot.clone(),
            ..Default::default()
        },
    )?;
    let dir = &plan.storage_dir;
    let conversations = match Archive::open(dir)
        .with_context(|| format!("could not open the history in {}", dir.display()))?
    {
        Some(archive) => archive.conversations_since(since)?,
        None => Vec::new(),
    };
    let persona = plan.persona.clone();
    let hands_off = |id: &str| persona.hands_off(&ReplySource::Rule(id.to_string()));
    let r = report::build(&conversations, &hands_off);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", report::markdown(&r, plan.spec.name()));
    }
    Ok(0)
}

/// Unix milliseconds of local midnight at the start of `day` (YYYY-MM-DD).
fn parse_day(day: &str) -> anyhow::Result<i64> {
    let d = chrono::NaiveDate::parse_from_str(day.trim(), "%Y-%m-%d")
        .with_context(|| format!("--since {day:?} is not a date; write it as YYYY-MM-DD"))?;
    let t = d
        .and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(chrono::Local).earliest())
        .with_context(|| format!("--since {day:?} is not a valid local time"))?;
    Ok(t.timestamp_millis())
}
