//! Unit tests of rules: each trigger, ordering, pass-through actions, validation.

use super::*;

fn rules(yaml: &str) -> Rules {
    let raw: Vec<RawRule> = serde_yaml::from_str(yaml).expect("yaml");
    Rules::from_raw(&raw, "rules").expect("valid")
}

fn problems(yaml: &str) -> Vec<String> {
    let raw: Vec<RawRule> = serde_yaml::from_str(yaml).expect("yaml");
    Rules::from_raw(&raw, "rules")
        .expect_err("invalid")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn input(text: &str) -> RuleInput<'_> {
    RuleInput {
        text,
        first_message: false,
        asks_for_person: crate::matching::intent::asks_for_person(text),
        faq_answers: false,
    }
}

const SUPPORT: &str = r#"
- id: greet
  when: { first_message: true, contains_any: [hello, hi] }
  then: [ { reply: "Welcome to Acme!" } ]
- id: human
  when: { contains_any: ["talk to a human", "real person", agent] }
  then:
    - reply: "I'm passing you to a colleague."
    - handoff
- id: refund
  when: { contains_all: [refund, order] }
  then:
    - set_var: { topic: refund }
    - reply: "A colleague handles refunds."
    - handoff
- id: tag-router
  when: { regex: "\\bX[0-9]{3}\\b" }
  then: [ { set_var: { product: router } } ]
- id: stop
  when: { command: stop }
  then: [ { reply: "Bye." }, end_session ]
- id: pirate
  when: { command: /pirate }
  then: [ { switch_persona: pirate }, { reply: "Arr." } ]
"#;

#[test]
fn contains_any_ignores_case_punctuation_and_inflection() {
    let r = rules(SUPPORT);
    let o = r.check(&input("Can I TALK to a human, please?"));
    assert_eq!(o.answered_by.as_deref(), Some("human"));
    assert_eq!(
        o.actions,
        vec![
            Action::Reply("I'm passing you to a colleague.".into()),
            Action::Handoff
        ]
    );
    assert_eq!(
        r.check(&input("are there agents?")).answered_by.as_deref(),
        Some("human")
    );
    assert_eq!(r.check(&input("the magenta one")).answered_by, None);
}

#[test]
fn contains_all_needs_every_phrase() {
    let r = rules(SUPPORT);
    assert_eq!(r.check(&input("refund please")).answered_by, None);
    let o = r.check(&input("I want a refund for order 55"));
    assert_eq!(o.answered_by.as_deref(), Some("refund"));
    assert!(
        o.actions
            .contains(&Action::SetVar([("topic".into(), "refund".into())].into()))
    );
}

#[test]
fn first_message_trigger_only_fires_on_the_first_message() {
    let r = rules(SUPPORT);
    let first = RuleInput {
        text: "hello there",
        first_message: true,
        asks_for_person: false,
        faq_answers: false,
    };
    assert_eq!(r.check(&first).answered_by.as_deref(), Some("greet"));
    assert_eq!(r.check(&input("hello there")).answered_by, None);
}

#[test]
fn regex_rules_without_reply_pass_through_with_their_actions() {
    let r = rules(SUPPORT);
    let o = r.check(&input("my x200 wants a refund on order 1"));
    assert_eq!(o.matched, vec!["refund".to_string()]);
    let o = r.check(&input("my x200 blinks"));
    assert_eq!(o.answered_by, None);
    assert_eq!(o.matched, vec!["tag-router".to_string()]);
    assert_eq!(
        o.actions,
        vec![Action::SetVar([("product".into(), "router".into())].into())]
    );
}

#[test]
fn earlier_rules_win_and_pass_through_actions_accumulate() {
    let r = rules(
        r#"
- id: tag
  when: { contains_any: [router] }
  then: [ { set_var: { product: router } } ]
- id: a
  when: { contains_any: [router] }
  then: [ { reply: "first" } ]
- id: b
  when: { contains_any: [router] }
  then: [ { reply: "second" } ]
"#,
    );
    let o = r.check(&input("router"));
    assert_eq!(o.answered_by.as_deref(), Some("a"));
    assert_eq!(o.reply.as_deref(), Some("first"));
    assert_eq!(o.matched, vec!["tag".to_string(), "a".to_string()]);
    assert_eq!(o.actions.len(), 2);
}

#[test]
fn commands_match_with_args_and_bot_suffix_only_at_the_start() {
    let r = rules(SUPPORT);
    for t in ["/stop", "  /STOP now", "/stop@acme_bot"] {
        assert_eq!(
            r.check(&input(t)).answered_by.as_deref(),
            Some("stop"),
            "{t}"
        );
    }
    for t in ["stop", "please /stop", "/stopped"] {
        assert_eq!(r.check(&input(t)).answered_by, None, "{t}");
    }
    let o = r.check(&input("/pirate"));
    assert_eq!(o.actions[0], Action::SwitchPersona("pirate".into()));
}

#[test]
fn bad_regex_is_reported_with_its_column() {
    let p = problems(
        r#"
- id: r
  when: { regex: "order (\\d+" }
  then: [ { reply: x } ]
"#,
    );
    assert_eq!(
        p,
        vec!["rules[0].when.regex: invalid regex \"order (\\d+\" at column 7: unclosed group; fix the pattern".to_string()]
    );
}

#[test]
fn unknown_actions_and_fields_fail_to_parse() {
    let e =
        serde_yaml::from_str::<Vec<RawRule>>("- id: x\n  when: {command: a}\n  then: [escalate]\n")
            .expect_err("unknown action");
    assert!(
        e.to_string()
            .contains("unknown action `escalate`; expected one of reply, handoff"),
        "{e}"
    );
    let e = serde_yaml::from_str::<Vec<RawRule>>(
        "- id: x\n  when: {contains: [a]}\n  then: [handoff]\n",
    )
    .expect_err("unknown trigger");
    assert!(e.to_string().contains("unknown field `contains`"), "{e}");
}

#[test]
fn actions_round_trip_through_yaml() {
    let yaml = "- reply: hi\n- handoff\n- switch_persona: pirate\n- set_var:\n    topic: refund\n- end_session\n";
    let actions: Vec<Action> = serde_yaml::from_str(yaml).expect("parses");
    assert_eq!(actions.len(), 5);
    assert_eq!(serde_yaml::to_string(&actions).expect("serialises"), yaml);
    let e = serde_yaml::from_str::<Vec<Action>>("- handoff: now\n").expect_err("value");
    assert!(e.to_string().contains("takes no value"), "{e}");
}

#[test]
fn validation_reports_every_problem() {
    let p = problems(
        r#"
- id: a
  when: {}
  then: []
- id: a
  when: { command: "two words", contains_any: ["?!"] }
  then: [ handoff, { set_var: { "bad name": x } }, { switch_persona: "" } ]
"#,
    );
    let want = [
        "rules[0].when: has no condition",
        "rules[0].then: is empty",
        "rules[1].id: duplicate rule id \"a\" (also used by rules[0])",
        "rules[1].when.contains_any[0]: \"?!\" has no words",
        "rules[1].when.command: \"two words\" is not a command name",
        "rules[1].then[0]: `handoff` needs a `reply`",
        "rules[1].then[1].set_var: \"bad name\" is not a variable name",
        "rules[1].then[2].switch_persona: is empty",
    ];
    for w in want {
        assert!(
            p.iter().any(|x| x.starts_with(w)),
            "missing {w:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), want.len(), "{p:#?}");
}

const HANDOFF: &str = r#"
- id: human-words
  when: { contains_any: [someone, human] }
  then: [ { reply: "Passing you on." }, handoff ]
- id: human-intent
  when: { intent: human }
  then: [ { reply: "A colleague will answer." }, handoff ]
"#;

#[test]
fn a_confident_faq_answer_outranks_a_handoff_rule_that_matched_only_by_a_word() {
    let r = rules(HANDOFF);
    let text = "someone changed my wifi password, where do I find the default one?";
    let mut inp = input(text);
    assert!(!inp.asks_for_person);
    assert_eq!(r.check(&inp).answered_by.as_deref(), Some("human-words"));
    inp.faq_answers = true;
    assert_eq!(r.check(&inp).answered_by, None);
    assert!(r.check(&inp).actions.is_empty());
}

#[test]
fn the_human_intent_matches_requests_for_a_person_even_when_the_faq_answers() {
    let r = rules(HANDOFF);
    let mut inp = input("can I speak to someone please");
    inp.faq_answers = true;
    assert_eq!(r.check(&inp).answered_by.as_deref(), Some("human-words"));
    let inp = input("let me chat with a staff member");
    assert_eq!(r.check(&inp).answered_by.as_deref(), Some("human-intent"));
    assert_eq!(
        r.check(&input("how do I reset my router")).answered_by,
        None
    );
}
