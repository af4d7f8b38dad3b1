use super::*;
use crate::chat::Role;

const GOOD: &str = "\
name: Polly
description: a test parrot
system: |
  You are {{bot}}. The user is {{user}}.
greeting: Hello {{user}}!
examples:
  - user: Hi
    assistant: Squawk, {{user}}!
model: smollm2-135m
sampling:
  temperature: 0.0
  top_k: 10
  max_tokens: 64
stop: [\"User:\"]
context:
  window: 1024
  reply_reserve: 100
";

fn parse(text: &str) -> Result<Persona, PersonaError> {
    Persona::parse(Path::new("personas/polly.yaml"), text)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
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
fn a_full_persona_loads_with_its_values() {
    let p = parse(GOOD).unwrap();
    assert_eq!(p.id(), "polly");
    assert_eq!(p.name(), "Polly");
    assert_eq!(p.description(), Some("a test parrot"));
    assert_eq!(p.system_text(&ctx()), "You are Polly. The user is Ada.\n");
    assert_eq!(p.greeting(&ctx()).as_deref(), Some("Hello Ada!"));
    assert_eq!(p.model(), Some("smollm2-135m"));
    assert_eq!(p.sampling().temperature, 0.0);
    assert_eq!(p.sampling().top_k, 10);
    assert_eq!(p.sampling().top_p, Sampling::default().top_p);
    assert_eq!(p.max_tokens(), 64);
    assert_eq!(p.stop(), ["User:"]);
    assert_eq!(p.context_window(), Some(1024));
    assert_eq!(p.reply_reserve(), 100);
    assert_eq!(p.reply_reserve_for(150), 100, "an explicit reserve is kept");
    assert_eq!(p.version().len(), 16);
}

#[test]
fn minimal_persona_gets_defaults() {
    let p = parse("name: A\nsystem: Be brief.\n").unwrap();
    assert_eq!(p.max_tokens(), DEFAULT_MAX_TOKENS);
    assert_eq!(p.reply_reserve(), DEFAULT_MAX_TOKENS);
    assert_eq!(p.context_window(), None);
    assert_eq!(p.reply_reserve_for(4096), DEFAULT_MAX_TOKENS);
    assert_eq!(
        p.reply_reserve_for(512),
        256,
        "at most half a small window by default"
    );
    assert_eq!(p.sampling(), &Sampling::default());
    assert!(p.greeting(&ctx()).is_none());
}

#[test]
fn version_follows_content() {
    let a = parse("name: A\nsystem: Be brief.\n").unwrap();
    let b = parse("name: A\nsystem: Be briefer.\n").unwrap();
    let a2 = parse("name: A\nsystem: Be brief.\n").unwrap();
    assert_ne!(a.version(), b.version());
    assert_eq!(a.version(), a2.version());
}

#[test]
fn out_of_range_values_name_position_and_range() {
    let text = "name: A\nsystem: x\nsampling:\n  temperature: 3.5\n  top_p: 1.5\n";
    assert_eq!(
        errors(text),
        [
            "personas/polly.yaml:4:16: sampling.temperature: 3.5 is out of range (0.0 to 2.0)",
            "personas/polly.yaml:5:10: sampling.top_p: 1.5 is out of range (0.0 to 1.0)",
        ]
    );
}

#[test]
fn nan_is_out_of_range() {
    let e = errors("name: A\nsystem: x\nsampling:\n  temperature: .nan\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].ends_with("sampling.temperature: .nan is out of range (0.0 to 2.0)"),
        "{e:?}"
    );
}

#[test]
fn unknown_field_has_hint() {
    assert_eq!(
        errors("name: A\nsystem: x\nsampling:\n  temprature: 0.5\n"),
        [
            "personas/polly.yaml:4:3: sampling.temprature: unknown field; did you mean \"temperature\"?"
        ]
    );
}

#[test]
fn missing_required_fields_all_reported() {
    assert_eq!(
        errors("description: nothing else\n"),
        [
            "personas/polly.yaml:1:1: name: missing (required); give the bot's display name",
            "personas/polly.yaml:1:1: system: missing (required); write who the bot is and how it answers",
        ]
    );
}

#[test]
fn unknown_macro_is_an_error_with_hint() {
    assert_eq!(
        errors("name: A\nsystem: You are {{char}}.\n"),
        ["personas/polly.yaml:2:9: system: unknown macro \"{{char}}\"; did you mean {{bot}}?"]
    );
}

#[test]
fn reserve_must_leave_room() {
    assert_eq!(
        errors("name: A\nsystem: x\ncontext:\n  window: 512\n  reply_reserve: 512\n"),
        [
            "personas/polly.yaml:5:18: context.reply_reserve: 512 leaves no room for the prompt in a 512-token window; make it well below context.window"
        ]
    );
}

#[test]
fn empty_example_and_stop_are_errors() {
    let e = errors("name: A\nsystem: x\nexamples:\n  - user: ''\n    assistant: b\nstop: ['']\n");
    assert_eq!(
        e,
        [
            "personas/polly.yaml:4:11: examples[0].user: is empty",
            "personas/polly.yaml:6:8: stop[0]: is empty; an empty stop string would end every reply at once",
        ]
    );
}

fn count(m: &[ChatMessage]) -> Result<u32, EngineError> {
    Ok(m.iter()
        .map(|m| m.content.split_whitespace().count() as u32 + 2)
        .sum())
}

#[test]
fn prompt_has_system_examples_greeting_history_user() {
    let p = parse(GOOD).unwrap();
    let history = vec![
        ChatMessage::new(Role::User, "first question"),
        ChatMessage::new(Role::Assistant, "first answer"),
    ];
    let prompt = p
        .render_prompt(&history, "second question", &ctx(), 1024, &count)
        .unwrap();
    let roles: Vec<_> = prompt.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Assistant,
            Role::User,
            Role::Assistant,
            Role::User
        ]
    );
    assert_eq!(prompt.messages[2].content, "Squawk, Ada!");
    assert_eq!(prompt.messages[3].content, "Hello Ada!");
    assert_eq!(prompt.messages[6].content, "second question");
    assert_eq!(prompt.trimmed, 0);
    assert_eq!(prompt.tokens, count(&prompt.messages).unwrap());
}

#[test]
fn prompt_budget_subtracts_reply_reserve() {
    // reply_reserve 100: a window of 120 leaves 20 tokens, less than the preamble needs.
    let p = parse(GOOD).unwrap();
    let err = p
        .render_prompt(
            &[],
            "a b c d e f g h i j k l m n o p q r s t",
            &ctx(),
            120,
            &count,
        )
        .unwrap_err();
    assert!(
        matches!(err, EngineError::PromptTooLong { available: 20, .. }),
        "{err:?}"
    );
}

#[test]
fn shipped_personas_are_valid() {
    for (name, text) in crate::home::BUILTIN_PERSONAS {
        let p = Persona::parse(&Path::new("personas").join(format!("{name}.yaml")), text)
            .unwrap_or_else(|e| panic!("personas/{name}.yaml: {e}"));
        assert_eq!(p.id(), *name);
        assert!(!p.system_text(&ctx()).contains("{{"), "{name}");
    }
}
