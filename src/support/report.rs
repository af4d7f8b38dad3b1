//! `parlor report`, pure: from stored conversations, what a support owner acts on: questions
//! that got no FAQ answer (grouped by similarity, most frequent first, with an example each),
//! handoffs and what triggered them, "not sure" replies (and invented specifics caught), FAQ
//! hit counts, and the customers' ratings ("Did this help?"), with the answers rated 👎.
//! Markdown or JSON.

use crate::chat::{Rating, ReplySource, Role};
use crate::persona::text;
use crate::store::StoredMessage;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Two questions whose search terms overlap at least this much (Jaccard) are one group.
const SAME_QUESTION: f32 = 0.5;

/// A group of similar unanswered questions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    /// How many times it was asked.
    pub count: usize,
    /// The first wording seen.
    pub example: String,
    /// Up to three other wordings.
    pub other_wordings: Vec<String>,
    /// How it was answered most recently (`unsure`, `model`, `choices`).
    pub answered_by: String,
}

/// A handoff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Handoff {
    /// Session name.
    pub session: String,
    /// The rule that handed off.
    pub rule: String,
    /// The message that triggered it.
    pub trigger: String,
}

/// An answer a customer rated 👎.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unhelpful {
    /// Session name.
    pub session: String,
    /// The question.
    pub question: String,
    /// What answered it (`faq:ID`, `rule:ID`, `model`, ...).
    pub answered_by: String,
}

/// The report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Sessions read.
    pub sessions: usize,
    /// User messages read.
    pub questions: usize,
    /// Questions the FAQ did not answer, grouped.
    pub unanswered: Vec<Group>,
    /// Handoffs.
    pub handoffs: Vec<Handoff>,
    /// "Not sure" replies.
    pub not_sure: usize,
    /// Of those: generated replies replaced because they invented specifics.
    pub invented_caught: usize,
    /// FAQ answers per entry id, most first.
    pub faq_hits: Vec<(String, usize)>,
    /// Answers rated 👍.
    pub rated_up: usize,
    /// Answers rated 👎.
    pub rated_down: usize,
    /// The answers rated 👎 (fix these first).
    pub unhelpful: Vec<Unhelpful>,
}

/// Build the report from `(session name, messages)` pairs; `hands_off(rule id)` says whether
/// a rule hands off.
pub fn build(
    conversations: &[(String, Vec<StoredMessage>)],
    hands_off: &dyn Fn(&str) -> bool,
) -> Report {
    let mut r = Report {
        sessions: conversations.len(),
        ..Default::default()
    };
    let mut hits: BTreeMap<String, usize> = BTreeMap::new();
    let mut unanswered: Vec<(String, &'static str)> = Vec::new();
    for (session, msgs) in conversations {
        for pair in msgs.windows(2) {
            let (user, bot) = (&pair[0], &pair[1]);
            if user.role != Role::User || bot.role != Role::Assistant || bot.operator.is_some() {
                continue;
            }
            r.questions += 1;
            match bot.rating {
                Some(Rating::Up) => r.rated_up += 1,
                Some(Rating::Down) => {
                    r.rated_down += 1;
                    r.unhelpful.push(Unhelpful {
                        session: session.clone(),
                        question: user.text.clone(),
                        answered_by: source_name(&bot.source),
                    });
                }
                None => {}
            }
            match &bot.source {
                ReplySource::Faq(id) => *hits.entry(id.clone()).or_default() += 1,
                ReplySource::Rule(id) if hands_off(id) => r.handoffs.push(Handoff {
                    session: session.clone(),
                    rule: id.clone(),
                    trigger: user.text.clone(),
                }),
                ReplySource::Rule(_) => {}
                ReplySource::Unsure => {
                    r.not_sure += 1;
                    let invented = bot
                        .stats
                        .as_ref()
                        .and_then(|s| s.retrieval.as_ref())
                        .is_some_and(|m| !m.invented.is_empty());
                    if invented {
                        r.invented_caught += 1;
                    }
                    unanswered.push((user.text.clone(), "unsure"));
                }
                ReplySource::Choices => unanswered.push((user.text.clone(), "choices")),
                ReplySource::Model => unanswered.push((user.text.clone(), "model")),
            }
        }
    }
    r.unanswered = group(&unanswered);
    let mut hits: Vec<(String, usize)> = hits.into_iter().collect();
    hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    r.faq_hits = hits;
    r
}

/// What produced a reply, for the report (`faq:ID`, `rule:ID`, `model`, `choices`, `unsure`).
fn source_name(source: &ReplySource) -> String {
    match source {
        ReplySource::Faq(id) => format!("faq:{id}"),
        ReplySource::Rule(id) => format!("rule:{id}"),
        ReplySource::Model => "model".into(),
        ReplySource::Choices => "choices".into(),
        ReplySource::Unsure => "unsure".into(),
    }
}

/// Greedy grouping by term overlap, most frequent first.
fn group(questions: &[(String, &'static str)]) -> Vec<Group> {
    let mut groups: Vec<(BTreeSet<String>, Group)> = Vec::new();
    for (q, how) in questions {
        let terms: BTreeSet<String> = text::terms(q).into_iter().collect();
        let found = groups.iter_mut().find(|(t, _)| {
            let inter = t.intersection(&terms).count() as f32;
            let union = t.union(&terms).count().max(1) as f32;
            inter / union >= SAME_QUESTION || (t.is_empty() && terms.is_empty())
        });
        match found {
            Some((_, g)) => {
                g.count += 1;
                g.answered_by = how.to_string();
                if g.other_wordings.len() < 3 && *q != g.example && !g.other_wordings.contains(q) {
                    g.other_wordings.push(q.clone());
                }
            }
            None => groups.push((
                terms,
                Group {
                    count: 1,
                    example: q.clone(),
                    other_wordings: Vec::new(),
                    answered_by: how.to_string(),
                },
            )),
        }
    }
    let mut out: Vec<Group> = groups.into_iter().map(|(_, g)| g).collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.count));
    out
}

/// The report as Markdown.
pub fn markdown(r: &Report, title: &str) -> String {
    let mut s = format!(
        "# Support report: {title}\n\n{} conversations, {} questions; {} \"not sure\" replies ({} replaced for invented specifics); {} handoffs.\n\n",
        r.sessions,
        r.questions,
        r.not_sure,
        r.invented_caught,
        r.handoffs.len()
    );
    s.push_str("## Questions without an FAQ answer (add entries for these)\n\n");
    if r.unanswered.is_empty() {
        s.push_str("None.\n");
    } else {
        s.push_str("| times | example | other wordings | answered by |\n|---:|---|---|---|\n");
        for g in &r.unanswered {
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                g.count,
                cell(&g.example),
                cell(&g.other_wordings.join("; ")),
                g.answered_by
            ));
        }
    }
    s.push_str("\n## Handoffs\n\n");
    if r.handoffs.is_empty() {
        s.push_str("None.\n");
    } else {
        s.push_str("| session | rule | trigger |\n|---|---|---|\n");
        for h in &r.handoffs {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&h.session),
                cell(&h.rule),
                cell(&h.trigger)
            ));
        }
    }
    s.push_str(&format!(
        "\n## Ratings\n\n{} rated helpful, {} rated not helpful.\n",
        r.rated_up, r.rated_down
    ));
    if !r.unhelpful.is_empty() {
        s.push_str("\n| session | question | answered by |\n|---|---|---|\n");
        for u in &r.unhelpful {
            s.push_str(&format!(
                "| {} | {} | {} |\n",
                cell(&u.session),
                cell(&u.question),
                cell(&u.answered_by)
            ));
        }
    }
    s.push_str("\n## FAQ hits\n\n");
    if r.faq_hits.is_empty() {
        s.push_str("None.\n");
    } else {
        s.push_str("| entry | answers |\n|---|---:|\n");
        for (id, n) in &r.faq_hits {
            s.push_str(&format!("| {} | {n} |\n", cell(id)));
        }
    }
    s
}

/// Text safe inside a Markdown table cell: one line, pipes and control characters escaped.
fn cell(t: &str) -> String {
    let one: String = t
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let one = one.replace('|', "\\|");
    if one.chars().count() > 120 {
        format!("{}…", one.chars().take(120).collect::<String>())
    } else {
        one
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: Role, text: &str, source: ReplySource) -> StoredMessage {
        let mut m = StoredMessage::new(role, text);
        m.source = source;
        m
    }

    #[test]
    fn groups_unanswered_questions_and_counts_hits_and_handoffs() {
        let u = |t: &str| msg(Role::User, t, ReplySource::Model);
        let conv = vec![
            (
                "a".to_string(),
                vec![
                    u("do you sell laptops?"),
                    msg(Role::Assistant, "not sure", ReplySource::Unsure),
                    u("how long is the warranty"),
                    msg(
                        Role::Assistant,
                        "2 years",
                        ReplySource::Faq("warranty".into()),
                    ),
                    u("I want a human"),
                    msg(
                        Role::Assistant,
                        "passing on",
                        ReplySource::Rule("human".into()),
                    ),
                ],
            ),
            (
                "b".to_string(),
                vec![
                    u("Do you sell laptops | tablets?"),
                    msg(Role::Assistant, "not sure", ReplySource::Unsure),
                    u("what is the warranty"),
                    msg(
                        Role::Assistant,
                        "2 years",
                        ReplySource::Faq("warranty".into()),
                    ),
                    u("can I pay in bitcoin"),
                    msg(Role::Assistant, "maybe", ReplySource::Model),
                ],
            ),
        ];
        let r = build(&conv, &|id| id == "human");
        assert_eq!((r.sessions, r.questions, r.not_sure), (2, 6, 2));
        assert_eq!(r.unanswered.len(), 2);
        assert_eq!(r.unanswered[0].count, 2);
        assert_eq!(r.unanswered[0].example, "do you sell laptops?");
        assert_eq!(r.handoffs[0].trigger, "I want a human");
        assert_eq!(r.faq_hits, vec![("warranty".to_string(), 2)]);
        let md = markdown(&r, "acme");
        assert!(
            md.contains("| 2 | do you sell laptops? | Do you sell laptops \\| tablets? | unsure |")
        );
    }

    #[test]
    fn ratings_are_counted_and_the_unhelpful_answers_listed() {
        let rated = |text: &str, source, rating| {
            let mut m = msg(Role::Assistant, text, source);
            m.rating = Some(rating);
            m
        };
        let conv = vec![(
            "tg-1".to_string(),
            vec![
                msg(Role::User, "hours?", ReplySource::Model),
                rated("9 to 5", ReplySource::Faq("hours".into()), Rating::Up),
                msg(Role::User, "why is it red", ReplySource::Model),
                rated("try a reboot", ReplySource::Model, Rating::Down),
                msg(Role::User, "thanks", ReplySource::Model),
                msg(Role::Assistant, "you are welcome", ReplySource::Model),
            ],
        )];
        let r = build(&conv, &|_| false);
        assert_eq!((r.rated_up, r.rated_down), (1, 1));
        assert_eq!(
            r.unhelpful,
            [Unhelpful {
                session: "tg-1".into(),
                question: "why is it red".into(),
                answered_by: "model".into(),
            }]
        );
        let md = markdown(&r, "acme");
        assert!(md.contains("1 rated helpful, 1 rated not helpful."), "{md}");
        assert!(md.contains("| tg-1 | why is it red | model |"), "{md}");
    }
}
