//! `parlor history`: list, show, export, import, delete and prune stored conversations.
//! Everything goes through the bot's [`Archive`] (no model is loaded); delete and prune erase
//! a session's key, records and saved engine states ([`Archive::erase`]).

use crate::bot::{Archive, ExportFormat, SessionInfo};
use crate::cli::GlobalArgs;
use crate::config::BotSpec;
use crate::home::{DEFAULT_BOT, Home};
use anyhow::Context;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// Subcommands of `parlor history`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the sessions: name, persona, model, messages, last update (newest first).
    List {
        /// Print a JSON array (name, id, persona, model, messages, created, updated) instead
        /// of a table.
        #[arg(long)]
        json: bool,
        /// Which database.
        #[command(flatten)]
        at: Where,
    },
    /// Print a session as a Markdown transcript.
    Show {
        /// Session name or id.
        session: String,
        /// Which database.
        #[command(flatten)]
        at: Where,
    },
    /// Export a session as Markdown (readable) or JSONL (exact, re-importable).
    Export {
        /// Session name or id.
        session: String,
        /// Output format.
        #[arg(long, short = 'f', value_enum, default_value = "md")]
        format: Format,
        /// Write to FILE instead of stdout (replaced atomically).
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
        /// Which database.
        #[command(flatten)]
        at: Where,
    },
    /// Import a JSONL export as a new session (renamed NAME-2... if the name is taken).
    Import {
        /// A file written by `parlor history export --format jsonl`.
        file: PathBuf,
        /// Which database.
        #[command(flatten)]
        at: Where,
    },
    /// Erase a session everywhere: its messages, state and saved engine states (unreadable
    /// in the database files from the moment this returns).
    Delete {
        /// Session name or id.
        session: String,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Which database.
        #[command(flatten)]
        at: Where,
    },
    /// Erase every session idle longer than AGE (as `storage.retention` does), and print what
    /// was erased.
    Prune {
        /// Idle time: a whole number of days, hours or minutes (`30d`, `12h`, `90m`).
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Which database.
        #[command(flatten)]
        at: Where,
    },
}

/// `30d`, `12h`, `90m` -> a duration.
pub fn parse_age(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let unit = match t.chars().last() {
        Some('d') => 86_400,
        Some('h') => 3_600,
        Some('m') => 60,
        _ => {
            return Err(format!(
                "\"{text}\": give a number of days, hours or minutes, e.g. 30d, 12h, 90m"
            ));
        }
    };
    let n: u64 = t[..t.len() - 1]
        .parse()
        .map_err(|_| format!("\"{text}\": not a whole number before the unit (e.g. 30d)"))?;
    Ok(std::time::Duration::from_secs(n.saturating_mul(unit)))
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Markdown transcript.
    Md,
    /// One JSON object per line: the session, then each message.
    Jsonl,
}

/// Which database to use: a bot's (default the terminal bot's), or an explicit directory.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Where {
    /// Bot whose history to use (bots/NAME.yaml or a path; default `terminal`).
    #[arg(long, short = 'b', conflicts_with = "storage")]
    pub bot: Option<String>,
    /// Storage directory of the database, instead of a bot's.
    #[arg(long, value_name = "DIR")]
    pub storage: Option<PathBuf>,
}

/// Run `parlor history`.
pub fn run(global: &GlobalArgs, command: Command) -> anyhow::Result<super::ExitCode> {
    match command {
        Command::List { json, at } => list(&storage_dir(global, &at)?, json),
        Command::Show { session, at } => {
            let (archive, info) = open_session(&storage_dir(global, &at)?, &at, &session)?;
            // A transcript for people: always inert, piped or not (`export` is the exact one).
            write_inert(&archive, &info, &mut std::io::stdout().lock())?;
            Ok(0)
        }
        Command::Export {
            session,
            format,
            output,
            at,
        } => {
            let (archive, info) = open_session(&storage_dir(global, &at)?, &at, &session)?;
            export(&archive, &info, format, output.as_deref())
        }
        Command::Import { file, at } => {
            let info = Archive::create(&storage_dir(global, &at)?)?.import_jsonl(&file)?;
            println!(
                "imported {} messages from \"{}\" as session \"{}\"",
                info.message_count,
                file.display(),
                info.name
            );
            Ok(0)
        }
        Command::Delete { session, yes, at } => {
            let (archive, info) = open_session(&storage_dir(global, &at)?, &at, &session)?;
            if !yes && !confirm(&info)? {
                println!("kept session \"{}\"", info.name);
                return Ok(0);
            }
            let erased = archive.erase(info.id)?;
            println!(
                "erased session \"{}\" ({} messages, {} saved engine states)",
                info.name, erased.messages, erased.saved_states
            );
            Ok(0)
        }
        Command::Prune { older_than, at } => {
            let dir = storage_dir(global, &at)?;
            super::erase::prune(&dir, older_than, chrono::Utc::now().timestamp_millis())
        }
    }
}

/// The database directory: `--storage DIR` if given, else the storage directory of the bot
/// (`--bot`, default `terminal`) in the home, exactly as `chat`/`ask` resolve it.
fn storage_dir(global: &GlobalArgs, at: &Where) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &at.storage {
        return Ok(dir.clone());
    }
    let home = Home::resolve(global.home.as_deref())?;
    let bot = at.bot.as_deref().unwrap_or(DEFAULT_BOT);
    Ok(BotSpec::load_from(&home, bot)?.storage_dir(&home))
}

fn list(dir: &Path, json: bool) -> anyhow::Result<super::ExitCode> {
    let sessions = match Archive::open(dir)? {
        Some(archive) => archive.sessions()?,
        None => Vec::new(),
    };
    if json {
        println!(
            "{}",
            serde_json::Value::Array(sessions.iter().map(session_json).collect())
        );
        return Ok(0);
    }
    if sessions.is_empty() {
        println!(
            "no sessions in \"{}\"; `parlor chat` or `parlor ask --session NAME` starts one",
            dir.display()
        );
        return Ok(0);
    }
    print!("{}", table(&sessions));
    Ok(0)
}

/// One session as JSON; times are RFC 3339 (UTC).
fn session_json(s: &SessionInfo) -> serde_json::Value {
    let time = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
    };
    serde_json::json!({
        "name": s.name,
        "id": s.id.0,
        "persona": s.persona,
        "model": s.model,
        "messages": s.message_count,
        "created": time(s.created),
        "updated": time(s.updated),
    })
}

/// The `history list` table: one header row and one row per session, columns padded.
fn table(sessions: &[SessionInfo]) -> String {
    let header = ["NAME", "PERSONA", "MODEL", "MESSAGES", "UPDATED"].map(String::from);
    let rows: Vec<[String; 5]> = sessions
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.persona.clone(),
                s.model.clone(),
                s.message_count.to_string(),
                local_time(s.updated),
            ]
        })
        .collect();
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            match i {
                3 => line.push_str(&format!("{}{cell}  ", " ".repeat(pad))),
                _ => line.push_str(&format!("{cell}{}  ", " ".repeat(pad))),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn local_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        None => ms.to_string(),
    }
}

/// Open the database and find `session`, with errors that say what to do.
fn open_session(dir: &Path, at: &Where, session: &str) -> anyhow::Result<(Archive, SessionInfo)> {
    let hint = format!(
        "`parlor history list{}` shows the sessions",
        where_flags(at)
    );
    let Some(archive) = Archive::open(dir)? else {
        anyhow::bail!(
            "no session \"{session}\": there is no history in \"{}\" yet; {hint}",
            dir.display()
        );
    };
    match archive.find_session(session)? {
        Some(info) => Ok((archive, info)),
        None => anyhow::bail!("no session \"{session}\" in \"{}\"; {hint}", dir.display()),
    }
}

fn export(
    archive: &Archive,
    info: &SessionInfo,
    format: Format,
    output: Option<&Path>,
) -> anyhow::Result<super::ExitCode> {
    let write = |out: &mut dyn Write| -> anyhow::Result<()> {
        let mut out = out;
        match format {
            Format::Md => archive.export(info.id, ExportFormat::Markdown, &mut out)?,
            Format::Jsonl => archive.export(info.id, ExportFormat::Jsonl, &mut out)?,
        }
        Ok(())
    };
    let Some(path) = output else {
        let mut out = std::io::stdout().lock();
        // Markdown on a terminal is read, not kept: show escape sequences inert there.
        if format == Format::Md && out.is_terminal() {
            write_inert(archive, info, &mut out)?;
        } else {
            write(&mut out)?;
        }
        return Ok(0);
    };
    // Write beside the target and rename, so a failed export never leaves half a file.
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(parent)
        .with_context(|| format!("cannot write in \"{}\"", parent.display()))?;
    {
        let mut buffered = std::io::BufWriter::new(tmp.as_file_mut());
        write(&mut buffered)?;
        buffered
            .flush()
            .with_context(|| format!("cannot write \"{}\"", path.display()))?;
    }
    tmp.persist(path)
        .with_context(|| format!("cannot write \"{}\"", path.display()))?;
    eprintln!(
        "exported session \"{}\" ({} messages) to \"{}\"",
        info.name,
        info.message_count,
        path.display()
    );
    Ok(0)
}

/// The Markdown transcript with every control character and escape sequence made visible
/// ([`crate::sanitize::inert`]): a customer's `ESC[2J` must not clear the operator's screen.
fn write_inert(archive: &Archive, info: &SessionInfo, out: &mut impl Write) -> anyhow::Result<()> {
    let mut md = Vec::new();
    archive.export(info.id, ExportFormat::Markdown, &mut md)?;
    out.write_all(crate::sanitize::inert(&String::from_utf8_lossy(&md)).as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Ask on the terminal; refuse when nobody can answer.
fn confirm(info: &SessionInfo) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "not deleting session \"{}\" ({} messages) without confirmation; add --yes",
            info.name,
            info.message_count
        );
    }
    eprint!(
        "delete session \"{}\" and its {} messages? [y/N] ",
        info.name, info.message_count
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// The flags that select the same database again, for hints.
fn where_flags(at: &Where) -> String {
    match (&at.storage, &at.bot) {
        (Some(dir), _) => format!(" --storage {}", shell_word(&dir.display().to_string())),
        (None, Some(bot)) => format!(" --bot {}", shell_word(bot)),
        (None, None) => String::new(),
    }
}

/// Quote a path for a copy-pasteable command when it needs it.
fn shell_word(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::SessionId;

    #[test]
    fn the_table_pads_columns_and_right_aligns_counts() {
        let s = |name: &str, n: u64| SessionInfo {
            id: SessionId(1),
            name: name.into(),
            persona: "assistant".into(),
            model: "smollm2-135m".into(),
            created: 0,
            updated: 0,
            message_count: n,
        };
        let t = table(&[s("a-long-name", 7), s("b", 1234)]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME         PERSONA    MODEL         MESSAGES  UPDATED"));
        assert!(lines[1].starts_with("a-long-name  assistant  smollm2-135m         7  "));
        assert!(lines[2].starts_with("b            assistant  smollm2-135m      1234  "));
    }

    #[test]
    fn storage_is_the_bots_unless_given() {
        let home = tempfile::tempdir().unwrap();
        let global = GlobalArgs::new(Some(home.path().to_path_buf()));
        assert_eq!(
            storage_dir(&global, &Where::default()).unwrap(),
            home.path().join("storage/terminal")
        );
        let acme = Where {
            bot: Some("acme-support".into()),
            storage: None,
        };
        assert_eq!(
            storage_dir(&global, &acme).unwrap(),
            home.path().join("storage/acme-support")
        );
        let at = Where {
            bot: None,
            storage: Some(PathBuf::from("/x")),
        };
        assert_eq!(storage_dir(&global, &at).unwrap(), PathBuf::from("/x"));
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("/tmp/a-b"), "/tmp/a-b");
        assert_eq!(shell_word("/tmp/it's here"), r"'/tmp/it'\''s here'");
    }
}
