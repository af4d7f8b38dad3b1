//! Per-session state that rules change: variables (`{{var.NAME}}`), whether a human took the
//! conversation over, whether it ended, and a persona switch. Kept in the store's `kv` tree
//! under `session/<id>/script` so it survives restarts; front ends read it (Telegram stops
//! auto-replies after a handoff).

use super::rules::Action;
use crate::chat::SessionId;
use crate::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What rules have set for one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionState {
    /// Session variables.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// A `handoff` action ran: a human should take over.
    #[serde(default)]
    pub handoff: bool,
    /// An `end_session` action ran.
    #[serde(default)]
    pub ended: bool,
    /// The persona a `switch_persona` action asked for (front ends load it).
    #[serde(default)]
    pub persona: Option<String>,
}

impl SessionState {
    /// The `kv` key of a session's state.
    pub fn key(session: SessionId) -> String {
        format!("session/{}/script", session.0)
    }

    /// The state of `session` (empty if none was saved).
    pub fn load(store: &Store, session: SessionId) -> Result<Self, StoreError> {
        Ok(store.kv_get(&Self::key(session))?.unwrap_or_default())
    }

    /// Save (not flushed: the turn flushes with the reply).
    pub fn save(&self, store: &Store, session: SessionId) -> Result<(), StoreError> {
        store.kv_put(&Self::key(session), self)
    }

    /// Apply rule actions; returns whether anything changed.
    pub fn apply(&mut self, actions: &[Action]) -> bool {
        let before = self.clone();
        for a in actions {
            match a {
                Action::SetVar(vars) => self
                    .vars
                    .extend(vars.iter().map(|(k, v)| (k.clone(), v.clone()))),
                Action::Handoff => self.handoff = true,
                Action::EndSession => self.ended = true,
                Action::SwitchPersona(p) => self.persona = Some(p.clone()),
                Action::Reply(_) => {}
            }
        }
        *self != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_update_the_state() {
        let mut s = SessionState::default();
        assert!(!s.apply(&[Action::Reply("x".into())]));
        assert!(s.apply(&[
            Action::SetVar([("topic".to_string(), "refund".to_string())].into()),
            Action::Handoff,
        ]));
        assert_eq!(s.vars["topic"], "refund");
        assert!(s.handoff && !s.ended);
        s.apply(&[Action::SwitchPersona("pirate".into()), Action::EndSession]);
        assert_eq!(s.persona.as_deref(), Some("pirate"));
        assert!(s.ended);
    }

    #[test]
    fn state_round_trips_through_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        // A session's state is sealed with its key: the session must exist.
        assert!(SessionState::default().save(&store, SessionId(7)).is_err());
        let id = store.create_session("s", "p", "m").expect("session").id;
        assert_eq!(
            SessionState::load(&store, id).expect("load"),
            SessionState::default()
        );
        let mut s = SessionState::default();
        s.apply(&[Action::Handoff]);
        s.save(&store, id).expect("save");
        assert_eq!(SessionState::load(&store, id).expect("load"), s);
        assert_eq!(
            SessionState::load(&store, SessionId(id.0 + 1)).expect("load"),
            SessionState::default()
        );
    }
}
