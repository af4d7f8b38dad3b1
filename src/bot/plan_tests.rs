//! Table tests of the turn core: how a turn is answered for a given persona, history, rule
//! state and message. No store, no engine: tokens are counted as words.

use super::*;
use crate::chat::Role;
use std::path::Path;

const SHOP: &str = r#"name: Shop
system: You are Shop. Be brief.
sampling:
  temperature: 0.2
  max_tokens: 40
examples:
  - user: Hi
    assistant: Hello!
faq:
  threshold: 0.7
  entries:
    - id: hours
      questions: ["What are your opening hours?"]
      answer: "We are open 9 to 5, {{user}}."
rules:
  - id: greet
    when: { first_message: true, contains_any: [hello] }
    then: [ { reply: "Welcome to the shop!" } ]
  - id: order
    when: { regex: "order \\d+" }
    then: [ { set_var: { has_order: "yes" } } ]
  - id: human
    when: { contains_any: [human] }
    then: [ { reply: "A colleague will answer (order: {{var.has_order}})." }, handoff ]
  - id: bye
    when: { contains_any: [goodbye] }
    then: [ { reply: "Bye." }, end_session ]
  - id: pirate
    when: { contains_any: [arr] }
    then: [ { switch_persona: pirate } ]
"#;

const PIRATE: &str = "name: Pirate\nsystem: You are a pirate.\n";

fn shop() -> Arc<Persona> {
    Arc::new(Persona::parse(Path::new("personas/shop.yaml"), SHOP).expect("valid persona"))
}

fn pirate() -> Arc<Persona> {
    Arc::new(Persona::parse(Path::new("personas/pirate.yaml"), PIRATE).expect("valid persona"))
}

/// The bot's persona is the shop; a `switch_persona: pirate` state speaks as the pirate.
fn persona_for(state: &SessionState) -> Arc<Persona> {
    match state.persona.as_deref() {
        Some("pirate") => pirate(),
        _ => shop(),
    }
}

/// Tokens as words, plus four for each message's template.
fn words(messages: &[ChatMessage]) -> Result<u32, EngineError> {
    Ok(messages
        .iter()
        .map(|m| m.content.split_whitespace().count() as u32 + 4)
        .sum())
}

fn history(n: usize) -> Vec<ChatMessage> {
    (0..n)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            ChatMessage::new(
                role,
                format!("message number {i} of the conversation so far"),
            )
        })
        .collect()
}

fn plan(text: &str, history: &[ChatMessage], state: SessionState, window: u32) -> Decision {
    plan_with(text, history, state, window, &TurnOptions::default())
}

fn plan_with(
    text: &str,
    history: &[ChatMessage],
    state: SessionState,
    window: u32,
    opts: &TurnOptions,
) -> Decision {
    plan_turn(
        TurnInput {
            session: SessionId(7),
            text,
            history,
            state,
            opts,
            engine_window: window,
            ranking: None,
            last_reply: None,
        },
        &persona_for,
        &words,
    )
}

fn generation(d: &Decision) -> &Generation {
    match &d.plan {
        TurnPlan::Generate(g) => g,
        other => panic!("expected the model to answer, got {other:?}"),
    }
}

#[test]
fn a_plain_question_goes_to_the_model_with_system_examples_history_and_message() {
    let h = history(2);
    let d = plan("tell me about bikes", &h, SessionState::default(), 4096);
    let g = generation(&d);
    let roles: Vec<Role> = g.request.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User
        ]
    );
    assert_eq!(
        g.request.messages.last().unwrap().content,
        "tell me about bikes"
    );
    assert_eq!(g.request.max_tokens, 40);
    assert_eq!(g.request.sampling.temperature, 0.2);
    assert_eq!(g.request.cache_key, format!("s7-{}", shop().version()));
    assert_eq!(g.trimmed, 0);
    assert_eq!(g.prompt_tokens, words(&g.request.messages).unwrap());
    assert_eq!(d.new_state, None, "nothing changed");
    assert_eq!(
        (d.persona.as_str(), d.ended, d.handoff),
        ("Shop", false, false)
    );
}

#[test]
fn a_faq_question_is_answered_from_the_faq_with_the_user_name() {
    let opts = TurnOptions {
        user_name: Some("Ada".into()),
        ..Default::default()
    };
    let d = plan_with(
        "What are your opening hours?",
        &history(2),
        SessionState::default(),
        4096,
        &opts,
    );
    assert_eq!(
        d.plan,
        TurnPlan::FaqAnswer {
            entry: "hours".into(),
            text: "We are open 9 to 5, Ada.".into()
        }
    );
}

#[test]
fn a_first_message_rule_fires_only_on_the_first_message() {
    let first = plan("hello there", &[], SessionState::default(), 4096);
    assert_eq!(
        first.plan,
        TurnPlan::RuleReply {
            rule: "greet".into(),
            text: "Welcome to the shop!".into()
        }
    );
    let later = plan("hello there", &history(2), SessionState::default(), 4096);
    assert!(matches!(later.plan, TurnPlan::Generate(_)));
}

#[test]
fn a_set_var_rule_changes_the_state_and_the_model_still_answers() {
    let d = plan(
        "where is order 42?",
        &history(2),
        SessionState::default(),
        4096,
    );
    assert!(matches!(d.plan, TurnPlan::Generate(_)));
    let state = d.new_state.expect("the state changed");
    assert_eq!(state.vars["has_order"], "yes");
}

#[test]
fn a_handoff_rule_replies_with_the_session_variables_and_asks_for_a_human() {
    let mut state = SessionState::default();
    state.vars.insert("has_order".into(), "yes".into());
    let d = plan("I want a human", &history(2), state, 4096);
    assert_eq!(
        d.plan,
        TurnPlan::RuleReply {
            rule: "human".into(),
            text: "A colleague will answer (order: yes).".into()
        }
    );
    assert!(d.handoff);
    assert!(d.new_state.expect("changed").handoff);
}

#[test]
fn an_end_session_rule_ends_it_and_the_next_message_reopens_it() {
    let d = plan("goodbye", &history(2), SessionState::default(), 4096);
    assert!(d.ended);
    let ended = d.new_state.expect("changed");
    assert!(ended.ended);
    let next = plan("tell me more", &history(4), ended, 4096);
    assert!(!next.ended);
    assert_eq!(
        next.new_state.map(|s| s.ended),
        Some(false),
        "reopening is stored"
    );
}

#[test]
fn a_switch_persona_rule_lets_the_new_persona_answer() {
    let d = plan("arr matey", &history(2), SessionState::default(), 4096);
    assert_eq!(d.persona, "Pirate");
    let g = generation(&d);
    assert_eq!(g.request.messages[0].content, "You are a pirate.");
    assert_eq!(g.request.cache_key, format!("s7-{}", pirate().version()));
    assert_eq!(d.new_state.unwrap().persona.as_deref(), Some("pirate"));
}

#[test]
fn per_turn_options_replace_the_persona_settings() {
    let opts = TurnOptions {
        max_tokens: Some(5),
        sampling: Some(crate::engine::Sampling::greedy()),
        ..Default::default()
    };
    let d = plan_with(
        "tell me about bikes",
        &[],
        SessionState::default(),
        4096,
        &opts,
    );
    let g = generation(&d);
    assert_eq!(g.request.max_tokens, 5);
    assert_eq!(g.request.sampling, crate::engine::Sampling::greedy());
}

#[test]
fn old_history_is_trimmed_to_fit_the_window() {
    let h = history(40);
    let d = plan("tell me about bikes", &h, SessionState::default(), 160);
    let g = generation(&d);
    assert!(g.trimmed > 0, "some history left out");
    assert!(g.prompt_tokens <= 160 - 40, "the reply reserve stays free");
    assert_eq!(d.window, 160);
    // What is kept is the most recent history.
    let kept = &g.request.messages[g.request.messages.len() - 2];
    assert_eq!(kept.content, h[39].content);
}

#[test]
fn a_message_that_cannot_fit_cannot_be_answered() {
    let long = "word ".repeat(500);
    let d = plan(&long, &[], SessionState::default(), 200);
    assert!(
        matches!(&d.plan, TurnPlan::TooLong(m) | TurnPlan::CannotAnswer(m) if !m.is_empty()),
        "{:?}",
        d.plan
    );
}

const DESK: &str = r#"name: Desk
system: You are the help desk of Desk Ltd.
faq:
  threshold: 0.7
  inject_threshold: 0.35
  entries:
    - id: returns
      questions: ["Can I return an item?"]
      answer: "Returns are free within 30 days."
    - id: warranty
      questions: ["How long is the warranty?"]
      answer: "The warranty lasts 2 years."
grounding:
  enabled: true
  not_sure: "I am not sure. Type /human for a colleague."
"#;

fn desk(_: &SessionState) -> Arc<Persona> {
    Arc::new(Persona::parse(Path::new("personas/desk.yaml"), DESK).expect("valid persona"))
}

/// A ranking as the hybrid retriever would give it: (entry, score), best first.
fn ranked(scores: &[(usize, f32)]) -> crate::matching::Ranking {
    crate::matching::Ranking {
        scored: scores
            .iter()
            .map(|&(entry, score)| crate::matching::retrieval::Scored {
                entry,
                lexical: score,
                semantic: Some(score),
                score,
            })
            .collect(),
        signal: crate::matching::retrieval::Signal::Hybrid,
        asks_for_person: false,
        person: None,
    }
}

fn plan_desk(
    text: &str,
    ranking: &crate::matching::Ranking,
    last: Option<&StoredMessage>,
) -> Decision {
    plan_turn(
        TurnInput {
            session: SessionId(3),
            text,
            history: &[],
            state: SessionState::default(),
            opts: &TurnOptions::default(),
            engine_window: 4096,
            ranking: Some(ranking),
            last_reply: last,
        },
        &desk,
        &words,
    )
}

#[test]
fn grounded_mode_says_not_sure_and_offers_a_human_when_nothing_is_relevant() {
    let d = plan_desk("do you sell laptops", &ranked(&[(0, 0.1), (1, 0.05)]), None);
    assert_eq!(
        d.plan,
        TurnPlan::NotSure {
            text: "I am not sure. Type /human for a colleague.".into(),
            offer_handoff: true,
        }
    );
    let info = d.retrieval.expect("the FAQ's scores are reported");
    assert_eq!(info.best.expect("a best entry").id, "returns");
    assert_eq!(info.runner_up.expect("a runner-up").id, "warranty");
}

#[test]
fn a_confident_match_answers_and_two_close_ones_are_offered_as_numbered_choices() {
    let d = plan_desk("send it back?", &ranked(&[(0, 0.9), (1, 0.2)]), None);
    assert!(matches!(d.plan, TurnPlan::FaqAnswer { ref entry, .. } if entry == "returns"));

    let d = plan_desk("how long do I have", &ranked(&[(1, 0.5), (0, 0.48)]), None);
    let TurnPlan::OfferChoices { text, choices } = &d.plan else {
        panic!("expected choices, got {:?}", d.plan);
    };
    let ids: Vec<&str> = choices.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["warranty", "returns"]);
    assert!(text.contains("1. How long is the warranty?"), "{text}");

    // The next message "2" picks the second choice, whatever the retriever thinks of "2".
    let mut offered = StoredMessage::new(Role::Assistant, text.clone());
    offered.source = ReplySource::Choices;
    offered.stats = Some(crate::chat::TurnStats {
        retrieval: d.retrieval.clone(),
        ..Default::default()
    });
    let picked = plan_desk("2", &ranked(&[]), Some(&offered));
    assert_eq!(
        picked.plan,
        TurnPlan::FaqAnswer {
            entry: "returns".into(),
            text: "Returns are free within 30 days.".into()
        }
    );
}

#[test]
fn small_talk_goes_to_the_model_and_its_reply_is_checked_against_the_facts() {
    // Grounded mode lets small talk through to the model, never unchecked.
    let d = plan_desk("thanks", &ranked(&[(1, 0.1)]), None);
    let g = generation(&d);
    assert!(g.injected.is_empty(), "{:?}", g.injected);
    let check = g.check.as_ref().expect("grounded replies are checked");
    assert!(
        check
            .invented("You are welcome! The warranty lasts 2 years.")
            .is_empty()
    );
    assert!(!check.invented("The warranty lasts 5 years.").is_empty());
    assert!(check.offer_handoff);
    assert!(check.not_sure.starts_with("I am not sure."));
}
