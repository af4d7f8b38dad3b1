//! Rules (`rules:`): triggers checked in file order before the model, each with actions. A rule
//! with a `reply` answers the message (the model is skipped); a rule without one applies its
//! actions (set a variable, switch persona) and checking goes on.
//!
//! ```yaml
//! rules:
//!   - id: human
//!     when: { contains_any: ["talk to a human", "real person", "agent"] }
//!     then:
//!       - reply: "I'm passing you to a colleague."
//!       - handoff
//! ```

mod action;

pub use action::Action;

use super::problem::Problem;
use super::text;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One rule as written in YAML.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique id (recorded with the message it answered).
    pub id: String,
    /// Conditions; all given ones must hold.
    pub when: RawTrigger,
    /// Actions, applied in order.
    pub then: Vec<Action>,
}

/// The conditions of a rule as written in YAML; every condition given must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrigger {
    /// Any of these words or phrases (case, punctuation and inflection ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contains_any: Vec<String>,
    /// All of these words or phrases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contains_all: Vec<String>,
    /// A regular expression (case-insensitive unless it says `(?-i)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// A slash command: `human` matches `/human`, `/human please`, `/human@mybot`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `true`: only the first user message of a session; `false`: any later one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_message: Option<bool>,
    /// A built-in intent: `human` = the message asks for a person (`matching::intent`), not
    /// just mentions one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
}

/// Built-in intents a rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// The customer asks for a person.
    Human,
}

/// What the message is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RuleInput<'a> {
    /// The user's message.
    pub text: &'a str,
    /// Whether it is the first user message of its session.
    pub first_message: bool,
    /// The message asks for a person (`matching::intent`).
    pub asks_for_person: bool,
    /// The FAQ answers the message confidently: a handoff rule that matched only by its words
    /// (`contains_any`/`contains_all`) yields to it unless the message asks for a person.
    pub faq_answers: bool,
}

/// A validated rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id.
    pub id: String,
    /// Actions in order.
    pub actions: Vec<Action>,
    any: Vec<String>,
    all: Vec<String>,
    regex: Option<regex::Regex>,
    command: Option<String>,
    first_message: Option<bool>,
    intent: Option<Intent>,
    raw: RawRule,
}

impl Rule {
    /// The reply text, if the rule answers.
    pub fn reply(&self) -> Option<&str> {
        self.actions.iter().find_map(|a| match a {
            Action::Reply(t) => Some(t.as_str()),
            _ => None,
        })
    }

    /// The rule as written (for export).
    pub fn raw(&self) -> &RawRule {
        &self.raw
    }

    /// Whether every condition holds for `input`.
    pub fn matches(&self, input: &RuleInput<'_>) -> bool {
        let norm = stemmed(input.text);
        if !self.any.is_empty() && !self.any.iter().any(|p| text::contains_phrase(&norm, p)) {
            return false;
        }
        if !self.all.iter().all(|p| text::contains_phrase(&norm, p)) {
            return false;
        }
        if let Some(re) = &self.regex
            && !re.is_match(input.text)
        {
            return false;
        }
        if let Some(cmd) = &self.command
            && !is_command(input.text, cmd)
        {
            return false;
        }
        if let Some(first) = self.first_message
            && first != input.first_message
        {
            return false;
        }
        if self.intent == Some(Intent::Human) && !input.asks_for_person {
            return false;
        }
        if input.faq_answers && !input.asks_for_person && self.hands_off_by_words_only() {
            return false;
        }
        true
    }

    /// A handoff rule whose only conditions are words (no command, regex or intent).
    fn hands_off_by_words_only(&self) -> bool {
        self.actions.contains(&Action::Handoff)
            && (!self.any.is_empty() || !self.all.is_empty())
            && self.regex.is_none()
            && self.command.is_none()
            && self.intent.is_none()
    }
}

/// The validated rules of a persona, in order.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// The outcome of checking a message against the rules.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleOutcome {
    /// The rule that answers, if any (the model is skipped).
    pub answered_by: Option<String>,
    /// The reply text (macros not yet expanded).
    pub reply: Option<String>,
    /// Actions of every matching rule up to and including the answering one, in order.
    pub actions: Vec<Action>,
    /// Ids of every matching rule, in order.
    pub matched: Vec<String>,
}

impl Rules {
    /// Validate `raw`; problems carry their field path under `field` (e.g. `rules`).
    pub fn from_raw(raw: &[RawRule], field: &str) -> Result<Self, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        let mut rules = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if r.id.trim().is_empty() {
                problems.push(Problem::new(
                    format!("{at}.id"),
                    "is empty; give the rule an id",
                ));
            } else if let Some(first) = seen.insert(&r.id, i) {
                problems.push(Problem::new(
                    format!("{at}.id"),
                    format!(
                        "duplicate rule id \"{}\" (also used by {field}[{first}]); ids must be unique",
                        r.id
                    ),
                ));
            }
            let w = &r.when;
            if w.contains_any.is_empty()
                && w.contains_all.is_empty()
                && w.regex.is_none()
                && w.command.is_none()
                && w.first_message.is_none()
                && w.intent.is_none()
            {
                problems.push(Problem::new(
                    format!("{at}.when"),
                    "has no condition; use contains_any, contains_all, regex, command, first_message or intent",
                ));
            }
            for (name, list) in [
                ("contains_any", &w.contains_any),
                ("contains_all", &w.contains_all),
            ] {
                for (j, p) in list.iter().enumerate() {
                    if stemmed(p).is_empty() {
                        problems.push(Problem::new(
                            format!("{at}.when.{name}[{j}]"),
                            format!("\"{p}\" has no words to look for"),
                        ));
                    }
                }
            }
            let regex = match &w.regex {
                Some(p) => match compile_regex(p) {
                    Ok(re) => Some(re),
                    Err(msg) => {
                        problems.push(Problem::new(format!("{at}.when.regex"), msg));
                        None
                    }
                },
                None => None,
            };
            let command = w
                .command
                .as_ref()
                .map(|c| c.trim().trim_start_matches('/').to_string());
            if let Some(c) = &command
                && (c.is_empty() || c.contains(char::is_whitespace))
            {
                problems.push(Problem::new(
                    format!("{at}.when.command"),
                    format!("\"{c}\" is not a command name; write it like `human` or `/human`"),
                ));
            }
            problems.extend(check_actions(&r.then, &format!("{at}.then")));
            rules.push(Rule {
                id: r.id.clone(),
                actions: r.then.clone(),
                any: w.contains_any.iter().map(|p| stemmed(p)).collect(),
                all: w.contains_all.iter().map(|p| stemmed(p)).collect(),
                regex,
                command,
                first_message: w.first_message,
                intent: w.intent,
                raw: r.clone(),
            });
        }
        if problems.is_empty() {
            Ok(Self { rules })
        } else {
            Err(problems)
        }
    }

    /// The rules in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Check `input` against the rules in order: the first matching rule with a reply answers;
    /// matching rules before it contribute their actions.
    pub fn check(&self, input: &RuleInput<'_>) -> RuleOutcome {
        let mut out = RuleOutcome::default();
        for rule in self.rules.iter().filter(|r| r.matches(input)) {
            out.matched.push(rule.id.clone());
            out.actions.extend(rule.actions.iter().cloned());
            if let Some(reply) = rule.reply() {
                out.answered_by = Some(rule.id.clone());
                out.reply = Some(reply.to_string());
                break;
            }
        }
        out
    }
}

fn check_actions(actions: &[Action], at: &str) -> Vec<Problem> {
    let mut problems = Vec::new();
    if actions.is_empty() {
        problems.push(Problem::new(
            at,
            "is empty; give at least one action (e.g. `- reply: ...`)",
        ));
    }
    let replies = actions
        .iter()
        .filter(|a| matches!(a, Action::Reply(_)))
        .count();
    if replies > 1 {
        problems.push(Problem::new(at, "has more than one `reply`; keep one"));
    }
    for (i, a) in actions.iter().enumerate() {
        match a {
            Action::Reply(t) if t.trim().is_empty() => {
                problems.push(Problem::new(format!("{at}[{i}].reply"), "is empty"));
            }
            Action::SwitchPersona(p) if p.trim().is_empty() => {
                problems.push(Problem::new(
                    format!("{at}[{i}].switch_persona"),
                    "is empty; name a persona (file stem under personas/)",
                ));
            }
            Action::SetVar(vars) => {
                if vars.is_empty() {
                    problems.push(Problem::new(format!("{at}[{i}].set_var"), "sets nothing"));
                }
                for name in vars.keys().filter(|n| !is_var_name(n)) {
                    problems.push(Problem::new(
                        format!("{at}[{i}].set_var"),
                        format!("\"{name}\" is not a variable name (letters, digits and `_`)"),
                    ));
                }
            }
            Action::Handoff | Action::EndSession if replies == 0 => {
                let name = if *a == Action::Handoff {
                    "handoff"
                } else {
                    "end_session"
                };
                problems.push(Problem::new(
                    format!("{at}[{i}]"),
                    format!(
                        "`{name}` needs a `reply` in the same rule telling the user what happens"
                    ),
                ));
            }
            _ => {}
        }
    }
    problems
}

/// Whether `name` can be a session variable (`{{var.NAME}}`).
pub fn is_var_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// Compile a rule regex (case-insensitive by default); a syntax error says where.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    if let Err(e) = regex_syntax::ast::parse::Parser::new().parse(pattern) {
        let span = e.span();
        return Err(format!(
            "invalid regex \"{pattern}\" at column {}: {}; fix the pattern",
            span.start.column,
            e.kind()
        ));
    }
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| format!("invalid regex \"{pattern}\": {e}"))
}

/// Normalised words, each stemmed, joined by spaces (stop words kept: phrases need them).
fn stemmed(text: &str) -> String {
    text::words(text)
        .iter()
        .map(|w| text::stem(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `text` is the slash command `cmd` (`/cmd`, `/cmd args`, `/cmd@botname`).
fn is_command(text: &str, cmd: &str) -> bool {
    let Some(rest) = text.trim_start().strip_prefix('/') else {
        return false;
    };
    let name = rest.split(|c: char| c.is_whitespace()).next().unwrap_or("");
    let name = name.split('@').next().unwrap_or("");
    name.eq_ignore_ascii_case(cmd)
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
