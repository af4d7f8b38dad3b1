//! Where `bots/`, `personas/` and `storage/` live: `--home`, `PARLOR_HOME`, the current
//! directory if it has `personas/` or `bots/`, else the user's data directory (seeded with the
//! built-in personas on first use).

use std::io::Write;
use std::path::{Path, PathBuf};

/// The personas shipped in `personas/`, embedded: seeded into a new home and used when a home
/// lacks a file of that name.
pub const BUILTIN_PERSONAS: &[(&str, &str)] = &[
    ("assistant", include_str!("../personas/assistant.yaml")),
    (
        "acme-support",
        include_str!("../personas/acme-support.yaml"),
    ),
    ("pirate", include_str!("../personas/pirate.yaml")),
];

/// The bots shipped in `bots/`, embedded like [`BUILTIN_PERSONAS`].
pub const BUILTIN_BOTS: &[(&str, &str)] = &[
    ("terminal", include_str!("../bots/terminal.yaml")),
    ("acme-support", include_str!("../bots/acme-support.yaml")),
];

/// The bot used when neither `--bot` nor `--persona` is given.
pub const DEFAULT_BOT: &str = "terminal";

/// Errors of finding or setting up the home directory.
#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    /// Neither `--home`, `PARLOR_HOME`, the current directory nor a user data directory is
    /// usable.
    #[error("could not find a home directory for parlor; pass --home DIR or set PARLOR_HOME")]
    NoDataDir,
    /// Creating a directory or writing a seeded file failed.
    #[error("could not set up \"{}\": {source}; pass another --home DIR", path.display())]
    Io {
        /// The path that failed.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Where a persona or bot definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// A definition built into the binary (the home has no file of that name).
    Builtin {
        /// Its name (file stem).
        name: &'static str,
        /// The YAML text.
        text: &'static str,
    },
}

/// The home directory and the layout under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    /// The home: `explicit` (`--home`/`PARLOR_HOME`), else the current directory if it has
    /// `personas/` or `bots/`, else the user's data directory. A home with neither directory
    /// is seeded with the built-in personas and bots.
    pub fn resolve(explicit: Option<&Path>) -> Result<Self, HomeError> {
        let cwd = std::env::current_dir().ok();
        let data =
            directories::ProjectDirs::from("", "", "parlor").map(|d| d.data_dir().to_path_buf());
        Self::choose(explicit, cwd.as_deref(), data)
    }

    /// [`Home::resolve`] with its inputs given (for tests).
    pub fn choose(
        explicit: Option<&Path>,
        cwd: Option<&Path>,
        data_dir: Option<PathBuf>,
    ) -> Result<Self, HomeError> {
        let root = match (explicit, cwd) {
            (Some(dir), _) => dir.to_path_buf(),
            (None, Some(cwd)) if cwd.join("personas").is_dir() || cwd.join("bots").is_dir() => {
                cwd.to_path_buf()
            }
            _ => data_dir.ok_or(HomeError::NoDataDir)?,
        };
        let home = Self::at(root);
        home.seed_if_new()?;
        Ok(home)
    }

    /// The home at `root`, as it is (no IO).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        Self { root }
    }

    /// Write the built-in personas and bots if the home has neither `personas/` nor `bots/`.
    /// Returns whether it seeded. Existing files are never overwritten.
    pub fn seed_if_new(&self) -> Result<bool, HomeError> {
        if self.personas_dir().is_dir() || self.bots_dir().is_dir() {
            return Ok(false);
        }
        for (dir, files) in [
            (self.personas_dir(), BUILTIN_PERSONAS),
            (self.bots_dir(), BUILTIN_BOTS),
        ] {
            create_dir(&dir)?;
            for (name, text) in files {
                write_new(&dir.join(format!("{name}.yaml")), text)?;
            }
        }
        create_dir(&self.models_dir())?;
        tracing::info!(home = %self.root.display(), "seeded a new home with the built-in personas and bots");
        Ok(true)
    }

    /// The home directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `bots/`.
    pub fn bots_dir(&self) -> PathBuf {
        self.root.join("bots")
    }
    /// `personas/`.
    pub fn personas_dir(&self) -> PathBuf {
        self.root.join("personas")
    }
    /// `storage/`.
    pub fn storage_dir(&self) -> PathBuf {
        self.root.join("storage")
    }
    /// `storage/models/`: downloaded GGUF files.
    pub fn models_dir(&self) -> PathBuf {
        self.storage_dir().join("models")
    }
    /// `storage/logs/`.
    pub fn logs_dir(&self) -> PathBuf {
        self.storage_dir().join("logs")
    }
    /// `storage/<bot>/`: the default database directory of a bot.
    pub fn bot_storage_dir(&self, bot: &str) -> PathBuf {
        self.storage_dir().join(bot)
    }

    /// A path relative to the home (absolute paths stay as they are).
    pub fn join(&self, path: impl AsRef<Path>) -> PathBuf {
        self.root.join(path)
    }

    /// Where the persona `name_or_path` comes from: a path (anything with a `/` or a `.yaml`
    /// ending, relative to the current directory or else to the home), `personas/NAME.yaml`,
    /// or a built-in one.
    pub fn persona_source(&self, name_or_path: &str) -> Option<Source> {
        find(
            &self.root,
            &self.personas_dir(),
            BUILTIN_PERSONAS,
            name_or_path,
        )
    }

    /// What to tell a user who named a persona that [`Home::persona_source`] does not find:
    /// (message, hint), the hint a close name or the list of known ones.
    pub fn persona_not_found(&self, name_or_path: &str) -> (String, String) {
        let names = self.persona_names();
        let hint = match crate::yaml::did_you_mean(name_or_path, names.iter().map(String::as_str)) {
            Some(best) => format!("did you mean \"{best}\"?"),
            None => format!("known personas: {}", names.join(", ")),
        };
        let message = if looks_like_path(name_or_path) {
            format!("no persona file \"{name_or_path}\"")
        } else {
            format!(
                "no persona \"{name_or_path}\" in {}",
                crate::yaml::display_path(&self.personas_dir())
            )
        };
        (message, hint)
    }

    /// Where the bot `name_or_path` comes from (like [`Home::persona_source`], in `bots/`).
    pub fn bot_source(&self, name_or_path: &str) -> Option<Source> {
        find(&self.root, &self.bots_dir(), BUILTIN_BOTS, name_or_path)
    }

    /// The persona files in `personas/`, sorted.
    pub fn persona_files(&self) -> Vec<PathBuf> {
        yaml_files(&self.personas_dir())
    }

    /// The bot files in `bots/`, sorted.
    pub fn bot_files(&self) -> Vec<PathBuf> {
        yaml_files(&self.bots_dir())
    }

    /// Names of all personas available: files in `personas/` and built-ins, sorted.
    pub fn persona_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .persona_files()
            .iter()
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .chain(BUILTIN_PERSONAS.iter().map(|(n, _)| n.to_string()))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Is this a path rather than a name?
pub fn looks_like_path(name_or_path: &str) -> bool {
    name_or_path.contains(['/', '\\'])
        || name_or_path.ends_with(".yaml")
        || name_or_path.ends_with(".yml")
}

fn find(
    root: &Path,
    dir: &Path,
    builtins: &[(&'static str, &'static str)],
    name: &str,
) -> Option<Source> {
    if looks_like_path(name) {
        // Relative to the current directory (command line), else to the home (bot files).
        let p = PathBuf::from(name);
        return [p.clone(), root.join(&p)]
            .into_iter()
            .find(|p| p.is_file())
            .map(Source::File);
    }
    for ext in ["yaml", "yml"] {
        let p = dir.join(format!("{name}.{ext}"));
        if p.is_file() {
            return Some(Source::File(p));
        }
    }
    builtins
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(name, text)| Source::Builtin { name, text })
}

/// `*.yaml` and `*.yml` files directly in `dir` (not `*.test.yaml` conversation tests), sorted.
pub fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name.ends_with(".yaml") || name.ends_with(".yml"))
                && !name.ends_with(".test.yaml")
                && !name.ends_with(".test.yml")
                && p.is_file()
        })
        .collect();
    files.sort();
    files
}

fn create_dir(dir: &Path) -> Result<(), HomeError> {
    std::fs::create_dir_all(dir).map_err(|source| HomeError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// Write `text` to `path` unless it exists (another process may be seeding at the same time).
fn write_new(path: &Path, text: &str) -> Result<(), HomeError> {
    let io = |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f.write_all(text.as_bytes()).map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_home_wins_and_is_seeded() {
        let tmp = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::create_dir(cwd.path().join("personas")).unwrap();
        let home = Home::choose(Some(tmp.path()), Some(cwd.path()), None).unwrap();
        assert_eq!(home.root(), tmp.path());
        assert!(home.personas_dir().join("assistant.yaml").is_file());
        assert!(home.bots_dir().join("terminal.yaml").is_file());
        assert!(home.models_dir().is_dir());
        assert_eq!(home.persona_files().len(), BUILTIN_PERSONAS.len());
        assert_eq!(home.bot_files().len(), BUILTIN_BOTS.len());
    }

    #[test]
    fn current_dir_with_personas_is_home_and_not_seeded() {
        let cwd = tempfile::tempdir().unwrap();
        std::fs::create_dir(cwd.path().join("personas")).unwrap();
        let home = Home::choose(None, Some(cwd.path()), None).unwrap();
        assert_eq!(home.root(), cwd.path());
        assert!(!home.bots_dir().exists());
        assert!(home.persona_files().is_empty());
    }

    #[test]
    fn otherwise_the_data_dir_is_seeded_once() {
        let cwd = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let root = data.path().join("parlor");
        let home = Home::choose(None, Some(cwd.path()), Some(root.clone())).unwrap();
        assert_eq!(home.root(), root);
        // A user's edit survives later runs.
        let file = home.personas_dir().join("assistant.yaml");
        std::fs::write(&file, "edited").unwrap();
        assert!(!home.seed_if_new().unwrap());
        Home::choose(None, Some(cwd.path()), Some(root)).unwrap();
        assert_eq!(std::fs::read_to_string(file).unwrap(), "edited");
    }

    #[test]
    fn no_home_at_all_is_an_error() {
        let cwd = tempfile::tempdir().unwrap();
        let err = Home::choose(None, Some(cwd.path()), None).unwrap_err();
        assert!(err.to_string().contains("--home"));
    }

    #[test]
    fn layout_paths() {
        let home = Home::at("/srv/parlor");
        assert_eq!(home.models_dir(), Path::new("/srv/parlor/storage/models"));
        assert_eq!(home.logs_dir(), Path::new("/srv/parlor/storage/logs"));
        assert_eq!(
            home.bot_storage_dir("acme"),
            Path::new("/srv/parlor/storage/acme")
        );
    }

    #[test]
    fn sources_prefer_files_then_builtins() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path());
        std::fs::create_dir(home.personas_dir()).unwrap();
        let mine = home.personas_dir().join("mine.yml");
        std::fs::write(&mine, "name: x").unwrap();
        assert_eq!(
            home.persona_source("mine"),
            Some(Source::File(mine.clone()))
        );
        assert!(matches!(
            home.persona_source("pirate"),
            Some(Source::Builtin { name: "pirate", .. })
        ));
        assert_eq!(home.persona_source("nobody"), None);
        let as_path = mine.to_string_lossy().into_owned();
        assert_eq!(home.persona_source(&as_path), Some(Source::File(mine)));
        assert_eq!(home.persona_source("missing/file.yaml"), None);
        assert!(home.persona_names().contains(&"mine".to_string()));
    }
}
