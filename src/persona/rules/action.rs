//! Rule actions and their YAML shape: a bare name (`- handoff`) or a one-key map
//! (`- reply: text`), with messages that name the action and what it takes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a rule does. In YAML a bare name (`- handoff`, `- end_session`) or a one-key map
/// (`- reply: text`, `- switch_persona: pirate`, `- set_var: {topic: refund}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ActionRepr", into = "ActionRepr")]
pub enum Action {
    /// Answer with this text (macros allowed); the model is skipped.
    Reply(String),
    /// Hand the conversation to a human (front ends notify staff and stop auto-replies).
    Handoff,
    /// Use this persona (file stem) from the next turn on.
    SwitchPersona(String),
    /// Set session variables (`{{var.NAME}}`).
    SetVar(BTreeMap<String, String>),
    /// End the session after this reply.
    EndSession,
}

/// The YAML shape of an action.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum ActionRepr {
    Name(String),
    Map(BTreeMap<String, serde_yaml::Value>),
}

const ACTION_NAMES: &str = "reply, handoff, switch_persona, set_var, end_session";

impl TryFrom<ActionRepr> for Action {
    type Error = String;
    fn try_from(repr: ActionRepr) -> Result<Self, String> {
        let (name, arg) = match repr {
            ActionRepr::Name(n) => (n, None),
            ActionRepr::Map(m) if m.len() == 1 => {
                let (k, v) = m.into_iter().next().expect("one entry");
                (k, Some(v))
            }
            ActionRepr::Map(m) => {
                return Err(format!(
                    "an action is one name or a one-key map, found {} keys; split it into several actions",
                    m.len()
                ));
            }
        };
        let text = |v: Option<serde_yaml::Value>| -> Result<String, String> {
            match v {
                Some(serde_yaml::Value::String(s)) => Ok(s),
                Some(serde_yaml::Value::Number(n)) => Ok(n.to_string()),
                Some(serde_yaml::Value::Bool(b)) => Ok(b.to_string()),
                _ => Err(format!(
                    "action `{name}` needs a text value, like `{name}: ...`"
                )),
            }
        };
        match name.as_str() {
            "reply" => Ok(Action::Reply(text(arg)?)),
            "switch_persona" => Ok(Action::SwitchPersona(text(arg)?)),
            "handoff" | "end_session" if arg.is_none() || arg == Some(serde_yaml::Value::Null) => {
                Ok(if name == "handoff" {
                    Action::Handoff
                } else {
                    Action::EndSession
                })
            }
            "handoff" | "end_session" => Err(format!(
                "action `{name}` takes no value; write `- {name}` and put the text in a `reply`"
            )),
            "set_var" => {
                let Some(serde_yaml::Value::Mapping(m)) = arg else {
                    return Err(
                        "action `set_var` needs a map, like `set_var: {topic: refund}`".into(),
                    );
                };
                let mut vars = BTreeMap::new();
                for (k, v) in m {
                    let key = text(Some(k))?;
                    let value = text(Some(v)).map_err(|_| {
                        format!("set_var: the value of \"{key}\" must be text or a number")
                    })?;
                    vars.insert(key, value);
                }
                Ok(Action::SetVar(vars))
            }
            other => Err(format!(
                "unknown action `{other}`; expected one of {ACTION_NAMES}"
            )),
        }
    }
}

impl From<Action> for ActionRepr {
    fn from(a: Action) -> Self {
        let one = |k: &str, v: serde_yaml::Value| ActionRepr::Map([(k.to_string(), v)].into());
        match a {
            Action::Reply(t) => one("reply", t.into()),
            Action::Handoff => ActionRepr::Name("handoff".into()),
            Action::SwitchPersona(p) => one("switch_persona", p.into()),
            Action::SetVar(vars) => one(
                "set_var",
                serde_yaml::Value::Mapping(
                    vars.into_iter()
                        .map(|(k, v)| (k.into(), v.into()))
                        .collect(),
                ),
            ),
            Action::EndSession => ActionRepr::Name("end_session".into()),
        }
    }
}
