//! `parlor model rm NAME [--force]`: delete a model file from `storage/models/`, unless a bot
//! of the home would load it (then only with `--force`). Files outside `storage/models/` are
//! never deleted: parlor did not put them there.

use crate::cli::BotArgs;
use crate::config::EngineSpec;
use crate::home::{DEFAULT_BOT, Home};
use crate::models;
use indicatif::HumanBytes;
use std::path::{Path, PathBuf};

/// Run `parlor model rm`.
pub fn run(home: &Home, name: &str, force: bool) -> anyhow::Result<crate::cmd::ExitCode> {
    let dir = home.models_dir();
    let path = models::resolve(&dir, name)?;
    let inside = same_file(path.parent().unwrap_or(Path::new("")), &dir);
    anyhow::ensure!(
        inside,
        "\"{}\" is not in \"{}\"; parlor only deletes the models it keeps there",
        path.display(),
        dir.display()
    );
    let users = bots_using(home, &path);
    if !users.is_empty() && !force {
        anyhow::bail!(
            "not deleting \"{}\": used by {} {}; change their `model:` first, or pass --force",
            path.display(),
            if users.len() == 1 { "bot" } else { "bots" },
            users
                .iter()
                .map(|b| format!("\"{b}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    std::fs::remove_file(&path)
        .map_err(|e| anyhow::anyhow!("could not delete \"{}\": {e}", path.display()))?;
    println!("deleted {} ({})", path.display(), HumanBytes(size));
    if !users.is_empty() {
        println!(
            "bots that used it ({}) will not start until it is back: `parlor model pull {name}`",
            users.join(", ")
        );
    }
    Ok(0)
}

/// The bots of `home` (its bot files, and the default bot) whose llama.cpp engine loads
/// `path`. A bot that does not load (an invalid file) is skipped with a note on stderr.
pub fn bots_using(home: &Home, path: &Path) -> Vec<String> {
    let mut choices: Vec<Option<PathBuf>> = home.bot_files().into_iter().map(Some).collect();
    choices.push(None); // the default bot, from a file or built in
    let mut users = Vec::new();
    for bot in choices {
        let args = BotArgs {
            bot: bot.as_ref().map(|p| p.display().to_string()),
            ..BotArgs::default()
        };
        let plan = match crate::launch::plan(home.clone(), &args) {
            Ok(plan) => plan,
            Err(e) => {
                let which = bot.map_or(DEFAULT_BOT.to_string(), |p| p.display().to_string());
                eprintln!("note: could not check bot \"{which}\": {e}");
                continue;
            }
        };
        if !matches!(plan.spec.engine(), EngineSpec::Llama(_)) {
            continue;
        }
        let uses =
            models::resolve(&home.models_dir(), &plan.model).is_ok_and(|p| same_file(&p, path));
        let name = plan.spec.name().to_string();
        if uses && !users.contains(&name) {
            users.push(name);
        }
    }
    users
}

/// Both paths name the same file or directory (after resolving symlinks and `..`).
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}
