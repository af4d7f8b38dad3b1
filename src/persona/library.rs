//! The personas a bot can switch to by name (a `switch_persona` rule action, a session resumed
//! with another persona): looked up in the home (`personas/NAME.yaml`, else the built-ins),
//! loaded once and reloaded when the file changes.

use super::Persona;
use crate::home::{Home, Source};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A loaded persona and the modification time of its file (`None` for built-ins).
type Loaded = (Option<SystemTime>, Arc<Persona>);

/// Personas by id, from one home.
pub struct Library {
    home: Home,
    cache: Mutex<HashMap<String, Loaded>>,
}

impl Library {
    /// Personas of `home`.
    pub fn new(home: Home) -> Self {
        Self {
            home,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The persona `id` (file stem or path). Errors are for users: which file and why.
    pub fn get(&self, id: &str) -> Result<Arc<Persona>, String> {
        let source = self.home.persona_source(id).ok_or_else(|| {
            format!(
                "no persona \"{id}\" in \"{}\"",
                self.home.personas_dir().display()
            )
        })?;
        let modified = match &source {
            Source::File(p) => std::fs::metadata(p).and_then(|m| m.modified()).ok(),
            Source::Builtin { .. } => None,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((when, p)) = cache.get(id)
            && *when == modified
        {
            return Ok(p.clone());
        }
        let persona = Arc::new(load(&source).map_err(|e| e.to_string())?);
        cache.insert(id.to_string(), (modified, persona.clone()));
        Ok(persona)
    }
}

/// Load a persona from where it lives.
pub fn load(source: &Source) -> Result<Persona, super::PersonaError> {
    match source {
        Source::File(p) => Persona::load(p),
        Source::Builtin { name, text } => {
            Persona::parse(&Path::new("personas").join(format!("{name}.yaml")), text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_files_then_builtins_and_reloads_edits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let personas = dir.path().join("personas");
        std::fs::create_dir_all(&personas).expect("mkdir");
        let file = personas.join("clerk.yaml");
        std::fs::write(&file, "name: Clerk\nsystem: You file papers.\n").expect("write");
        let lib = Library::new(Home::at(dir.path()));
        assert_eq!(lib.get("clerk").expect("clerk").name(), "Clerk");
        // Built-ins are found when the home has no file of that name.
        assert_eq!(lib.get("assistant").expect("builtin").id(), "assistant");
        let err = lib.get("nobody").expect_err("missing");
        assert!(err.contains("no persona \"nobody\""), "{err}");

        std::fs::write(&file, "name: Head Clerk\nsystem: You file papers.\n").expect("write");
        // Make the edit visible to coarse file-time clocks.
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(later))
            .expect("touch");
        assert_eq!(lib.get("clerk").expect("reloaded").name(), "Head Clerk");

        std::fs::write(&file, "name: [broken\n").expect("write");
        std::fs::File::options()
            .write(true)
            .open(&file)
            .and_then(|f| f.set_modified(later + std::time::Duration::from_secs(5)))
            .expect("touch");
        let err = lib.get("clerk").expect_err("invalid");
        assert!(err.contains("clerk.yaml:"), "{err}");
    }
}
