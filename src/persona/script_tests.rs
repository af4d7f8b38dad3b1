//! Persona-level tests of the scripting sections: validation with positions, intercept order,
//! injected facts in the rendered prompt.

use super::*;
use crate::chat::Role;
use crate::persona::PersonaError;
use std::path::Path;

const SHOP: &str = r#"name: Shop
system: You are {{bot}}.
faq:
  threshold: 0.7
  inject_threshold: 0.35
  entries:
    - id: hours
      questions: ["What are your opening hours?", "When are you open?"]
      answer: "We are open 9 to 5, {{user}}."
    - id: warranty
      questions: ["How long is the warranty?"]
      answer: "Two years."
knowledge:
  budget: 100
  entries:
    - id: company
      constant: true
      content: "Shop sells bikes."
    - id: ebike
      keys: [e-bike, ebike]
      content: "The e-bike battery lasts 80 km."
rules:
  - id: tag-order
    when: { regex: "order \\d+" }
    then: [ { set_var: { has_order: "yes" } } ]
  - id: human
    when: { contains_any: [human, "real person"] }
    then:
      - reply: "Passing you to a colleague (order known: {{var.has_order}})."
      - handoff
  - id: hours-override
    when: { command: hours }
    then: [ { reply: "Rule hours." } ]
"#;

fn parse(text: &str) -> Result<Persona, PersonaError> {
    Persona::parse(Path::new("personas/shop.yaml"), text)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .expect_err("invalid")
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn ctx() -> MacroContext {
    MacroContext {
        user: "Ada".into(),
        ..Default::default()
    }
}

#[test]
fn faq_answers_with_macros_expanded() {
    let p = parse(SHOP).expect("valid");
    let i = p.intercept("when are you open?", false, &ctx());
    assert_eq!(
        i.reply,
        Some((
            "We are open 9 to 5, Ada.".to_string(),
            ReplySource::Faq("hours".into())
        ))
    );
}

#[test]
fn rules_come_before_the_faq_and_their_variables_reach_the_reply() {
    let p = parse(SHOP).expect("valid");
    let i = p.intercept("/hours", false, &ctx());
    assert_eq!(
        i.reply.expect("rule").1,
        ReplySource::Rule("hours-override".into())
    );
    let i = p.intercept("about order 42, I want a human", false, &ctx());
    let (text, source) = i.reply.expect("rule answers");
    assert_eq!(source, ReplySource::Rule("human".into()));
    assert_eq!(text, "Passing you to a colleague (order known: yes).");
    assert_eq!(i.matched_rules, vec!["tag-order", "human"]);
    assert!(i.actions.contains(&Action::Handoff));
    assert!(p.hands_off(&source));
    assert!(!p.hands_off(&ReplySource::Rule("hours-override".into())));
    assert!(!p.hands_off(&ReplySource::Faq("hours".into())));
}

#[test]
fn unmatched_messages_go_to_the_model() {
    let p = parse(SHOP).expect("valid");
    let i = p.intercept("tell me a story about dragons", false, &ctx());
    assert_eq!(i, Intercept::default());
}

#[test]
fn prompt_carries_knowledge_and_weak_faq_matches_as_facts() {
    let p = parse(SHOP).expect("valid");
    let count = |m: &[ChatMessage]| -> Result<u32, crate::engine::EngineError> {
        Ok(m.iter().map(|m| m.content.len() as u32 / 4 + 4).sum())
    };
    let history = vec![ChatMessage::new(Role::User, "I have an ebike")];
    let prompt = p
        .render_prompt(
            &history,
            "does the warranty cover the battery?",
            &ctx(),
            2048,
            &count,
        )
        .expect("fits");
    let system = &prompt.messages[0].content;
    assert!(system.starts_with("You are Shop.\n\nUse these facts when they help to answer:\n- Shop sells bikes.\n- The e-bike battery lasts 80 km.\n- Q: How long is the warranty?\n  A: Two years."), "{system}");
    assert_eq!(
        prompt.injected,
        vec!["knowledge:company", "knowledge:ebike", "faq:warranty"]
    );
    let plain = p
        .render_prompt(&[], "tell me a story", &ctx(), 2048, &count)
        .expect("fits");
    assert_eq!(plain.injected, vec!["knowledge:company"]);
}

#[test]
fn check_reports_scripting_problems_with_positions() {
    let bad = r#"name: Shop
system: You are {{bot}}.
faq:
  entries:
    - id: a
      questions: [shipping]
      answer: "Hi {{usr}}"
    - id: a
      questions: [returns]
      answer: x
knowledge:
  budget: 5
  entries:
    - constant: true
      content: "This constant entry is much longer than five tokens."
rules:
  - id: r
    when: { regex: "order (\\d+" }
    then: [ { reply: x } ]
"#;
    let e = errors(bad);
    let want = [
        "personas/shop.yaml:7:15: faq.entries[0].answer: unknown macro \"{{usr}}\"; did you mean {{user}}?",
        "personas/shop.yaml:8:11: faq.entries[1].id: duplicate FAQ id \"a\" (also used by entries[0]); ids must be unique",
        "personas/shop.yaml:15:16: knowledge.entries[0].content: takes about 13 tokens, over the knowledge budget of 5; shorten it or raise `knowledge.budget`",
        "personas/shop.yaml:12:11: knowledge.budget: constant entries take about 13 tokens",
        "personas/shop.yaml:18:20: rules[0].when.regex: invalid regex \"order (\\d+\" at column 7: unclosed group; fix the pattern",
    ];
    for w in want {
        assert!(
            e.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {e:#?}"
        );
    }
    assert_eq!(e.len(), want.len(), "{e:#?}");
}

#[test]
fn unknown_actions_are_reported_with_their_position() {
    let e = errors(
        "name: S\nsystem: s\nrules:\n  - id: r\n    when: { command: x }\n    then: [escalate]\n",
    );
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(
        e[0].starts_with("personas/shop.yaml:6:11: rules[0].then[0]: unknown action `escalate`; expected one of reply, handoff"),
        "{e:#?}"
    );
}

/// Calibration printout of the shipped support FAQ on the questions of its test file:
/// `cargo test --lib script::tests::acme_faq_scores -- --ignored --nocapture`.
#[test]
#[ignore = "calibration printout"]
fn acme_faq_scores() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let p = Persona::load(&root.join("personas/acme-support.yaml")).expect("valid");
    let tests = crate::persona::testing::load(&root.join("personas/acme-support.test.yaml"))
        .expect("valid tests");
    for case in &tests.cases {
        for step in &case.steps {
            let r = p.faq().rank(&step.user, 2);
            let s: Vec<String> = r
                .iter()
                .map(|m| format!("{}={:.2}", p.faq().entries()[m.entry].id, m.score))
                .collect();
            println!("{:55} {:?}", step.user, s);
        }
    }
    for q in [
        "my cat likes to sleep on the router, is that ok?",
        "is the R1 good for gaming?",
        "can I use the router with my old modem?",
        "what is the weather in Berlin today?",
        "does the router work with fiber internet?",
        "how many devices can connect at the same time?",
    ] {
        let r = p.faq().rank(q, 2);
        let s: Vec<String> = r
            .iter()
            .map(|m| format!("{}={:.2}", p.faq().entries()[m.entry].id, m.score))
            .collect();
        println!("(not in FAQ) {q:55} {s:?}");
    }
}
