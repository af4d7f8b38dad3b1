//! Persona scripting end to end: the shipped conversation tests on the real model, a failing
//! test file reported readably, FAQ and rule answers through `Bot::turn` into sled, session
//! state of rule actions, import/export through the CLI, and hot reload.

use crate::common::{embedding_model_path, model_path, parlor_bin};
use parlor::bot::Bot;
use parlor::chat::{ReplySource, Role};
use parlor::engine::ScriptedEngine;
use parlor::persona::Persona;
use parlor::persona::session::SessionState;
use parlor::store::Store;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary home holding copies of the shipped personas (and their tests).
fn temp_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().expect("tempdir");
    let personas = home.path().join("personas");
    std::fs::create_dir(&personas).expect("mkdir");
    for e in std::fs::read_dir(root().join("personas")).expect("personas/") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, personas.join(p.file_name().expect("name"))).expect("copy");
    }
    home
}

/// `parlor --home HOME ARGS...` with the default model.
fn parlor(home: &Path, args: &[&str]) -> Output {
    Command::new(parlor_bin())
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .expect("runs parlor")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn shipped_persona_tests_pass_on_the_real_model() {
    let home = temp_home();
    let model = model_path();
    // The shipped support personas are tuned for hybrid retrieval: the real embedding model.
    let out = Command::new(parlor_bin())
        .arg("--home")
        .arg(home.path())
        .env("PARLOR_EMBEDDING_MODEL", embedding_model_path())
        .args(["test", "--model"])
        .arg(&model)
        .output()
        .expect("runs parlor");
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for persona in ["acme-support", "assistant", "pirate"] {
        assert!(
            shown.contains(&format!("PASS personas/{persona}.test.yaml"))
                || shown.contains(&format!("{persona}.test.yaml: ")),
            "no cases of {persona} ran:\n{shown}"
        );
    }
    assert!(!shown.contains("FAIL"), "{shown}");
    assert!(shown.contains(" 0 failed"), "{shown}");
    assert!(
        shown.contains("acme-support: 19 of 25 replies from the FAQ"),
        "{shown}"
    );
}

#[test]
fn a_failing_test_file_reports_what_failed_and_exits_1() {
    let home = temp_home();
    let model = model_path();
    let fixture = root().join("tests/fixtures/scripting/failing.test.yaml");
    let out = parlor(
        home.path(),
        &[
            "test",
            fixture.to_str().expect("utf-8"),
            "--model",
            model.to_str().expect("utf-8"),
        ],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    for want in [
        "FAIL ",
        "failing.test.yaml: wrong expectations fail readably [acme-support]",
        "    step 1: user: How long is the warranty?",
        "      reply (FAQ entry \"warranty\"): \"Acme routers have a 2-year warranty",
        "      - expected FAQ entry \"returns\" to answer, but FAQ entry \"warranty\" answered",
        "      - expected the reply to contain \"5 years\"",
        "    step 2: user: I want a refund",
        "      reply (rule \"refund-request\"): \"I have passed your refund request",
        "      - expected no handoff, but the conversation was handed to a human",
        "PASS ",
        "failing.test.yaml: a passing case in the same file [acme-support]",
        "2 cases: 1 passed, 1 failed",
    ] {
        assert!(shown.contains(want), "missing {want:?} in:\n{shown}");
    }

    let out = parlor(
        home.path(),
        &[
            "test",
            "--json",
            fixture.to_str().expect("utf-8"),
            "--model",
            model.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(report["passed"], 1);
    assert_eq!(report["failed"], 1);
    let step = &report["cases"][0]["steps"][0];
    assert_eq!(
        step["source"],
        serde_json::json!({"kind": "faq", "id": "warranty"})
    );
    assert_eq!(step["failures"].as_array().expect("list").len(), 2);
}

#[test]
fn an_invalid_test_file_is_reported_with_its_position() {
    let home = temp_home();
    let fixture = root().join("tests/fixtures/scripting/invalid.test.yaml");
    let out = parlor(home.path(), &["test", fixture.to_str().expect("utf-8")]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("invalid.test.yaml:6:9: cases[0].steps[0].contians: unknown field; did you mean \"contains\"?"),
        "{shown}"
    );
}

fn support_bot(dir: &Path) -> (Bot, Store) {
    let persona = Persona::load(&root().join("personas/acme-support.yaml")).expect("persona");
    let store = Store::open(dir).expect("store");
    // The scripted engine echoes: a reply that is not an echo came from the persona's script.
    let engine = Arc::new(ScriptedEngine::new([]));
    (Bot::new(persona, engine, store.clone()), store)
}

#[tokio::test]
async fn faq_and_rule_answers_skip_the_model_and_are_stored_with_their_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bot, store) = support_bot(dir.path());
    let s = bot.new_session(Some("t")).expect("session").id;

    let faq = bot
        .turn(s, "how long is the waranty?")
        .finish()
        .await
        .expect("reply");
    assert_eq!(faq.source, ReplySource::Faq("warranty".into()));
    assert!(
        faq.text.starts_with("Acme routers have a 2-year warranty"),
        "{}",
        faq.text
    );

    // Acme is grounded: a question nothing in its facts covers gets the not-sure reply and
    // never reaches the model; small talk does (and passes the facts check).
    let unsure = bot.turn(s, "tell me a joke").finish().await.expect("reply");
    assert_eq!(unsure.source, ReplySource::Unsure, "{unsure:?}");
    assert!(unsure.offer_handoff, "{unsure:?}");
    let model = bot.turn(s, "thanks").finish().await.expect("reply");
    assert_eq!(model.source, ReplySource::Model, "{model:?}");
    assert_eq!(model.text.trim(), "echo: thanks");
    assert!(!SessionState::load(&store, s).expect("state").handoff);

    let rule = bot
        .turn(s, "I want a refund now")
        .finish()
        .await
        .expect("reply");
    assert_eq!(rule.source, ReplySource::Rule("refund-request".into()));
    let state = SessionState::load(&store, s).expect("state");
    assert!(state.handoff);
    assert_eq!(state.vars.get("topic").map(String::as_str), Some("refund"));

    let stored = store.messages(s).expect("messages");
    let sources: Vec<(Role, ReplySource)> =
        stored.iter().map(|m| (m.role, m.source.clone())).collect();
    assert_eq!(
        sources,
        vec![
            (Role::User, ReplySource::Model),
            (Role::Assistant, ReplySource::Faq("warranty".into())),
            (Role::User, ReplySource::Model),
            (Role::Assistant, ReplySource::Unsure),
            (Role::User, ReplySource::Model),
            (Role::Assistant, ReplySource::Model),
            (Role::User, ReplySource::Model),
            (Role::Assistant, ReplySource::Rule("refund-request".into())),
        ]
    );
    assert_eq!(stored[1].text, faq.text);
}

#[test]
fn cards_and_modelfiles_import_into_valid_personas_and_export_back() {
    let home = temp_home();
    let fixtures = root().join("tests/fixtures/import");
    for (file, name) in [
        ("aria.png", "aria"),
        ("nova.card-v3.json", "nova"),
        ("legacy.card-v1.json", "old-tom"),
        ("helper.Modelfile", "llama3-2"),
    ] {
        let out = parlor(
            home.path(),
            &[
                "persona",
                "import",
                fixtures.join(file).to_str().expect("utf-8"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out));
        assert!(
            home.path().join(format!("personas/{name}.yaml")).exists(),
            "{file}"
        );
    }
    let again = parlor(
        home.path(),
        &[
            "persona",
            "import",
            fixtures.join("aria.card-v2.json").to_str().expect("utf-8"),
        ],
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again).contains("exists already; pass --force"),
        "{}",
        text(&again)
    );

    let check = parlor(home.path(), &["check"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));

    let out = parlor(
        home.path(),
        &["persona", "export", "aria", "--format", "card-v2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let card: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON card");
    assert_eq!(card["spec"], "chara_card_v2");
    assert_eq!(card["data"]["name"], "Aria");
    assert_eq!(
        card["data"]["tags"],
        serde_json::json!(["slice of life", "cozy"])
    );
    assert_eq!(
        card["data"]["character_book"]["entries"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    let out = parlor(home.path(), &["persona", "export", "acme-support"]);
    let card: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON card");
    let parlor_ext = &card["data"]["extensions"]["parlor"];
    assert_eq!(
        parlor_ext["faq"]["entries"].as_array().map(Vec::len),
        Some(18)
    );
    assert_eq!(parlor_ext["rules"][0]["id"], "refund-request");
}

/// The next report of the watcher, within a deadline (not a sleep: it returns as soon as the
/// report arrives).
async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<String, String>>,
) -> Result<String, String> {
    tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the watcher reports within 20 s")
        .expect("watcher alive")
}

#[tokio::test]
async fn hot_reload_applies_valid_edits_and_keeps_the_last_good_persona() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shop.yaml");
    std::fs::write(&path, "name: Shop\nsystem: You sell bikes.\n").expect("write");
    let (bot, _store) = {
        let store = Store::open(&dir.path().join("db")).expect("store");
        let persona = Persona::load(&path).expect("persona");
        let engine = Arc::new(ScriptedEngine::new([]));
        (Bot::new(persona, engine, store.clone()), store)
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // What `parlor chat` and `parlor telegram` run.
    let _watch = bot.watch_persona(&path, move |report| {
        let _ = tx.send(report);
    });
    std::fs::write(
        &path,
        "name: Bike Shop\nsystem: You sell bikes and helmets.\n",
    )
    .expect("edit");
    assert_eq!(next(&mut rx).await, Ok("Bike Shop".to_string()));
    assert_eq!(bot.persona().name(), "Bike Shop");

    std::fs::write(
        &path,
        "name: Broken\nsystem: x\nfaq: {entries: [{id: a}]}\n",
    )
    .expect("bad edit");
    let err = next(&mut rx).await.expect_err("invalid edit is reported");
    assert!(err.contains("shop.yaml:3:"), "{err}");
    assert!(err.contains("faq.entries[0]"), "{err}");
    assert_eq!(
        bot.persona().name(),
        "Bike Shop",
        "the last good persona stays"
    );
}

const DESK: &str = r#"
name: Front Desk
system: You are the front desk of a hotel.
rules:
  - id: to-pirate
    when: { contains_any: [pirate] }
    then: [ { switch_persona: pirate } ]
  - id: bye
    when: { contains_any: [goodbye] }
    then: [ { reply: "Goodbye, come again." }, end_session ]
"#;

const PIRATE: &str = "name: Captain Flint\nsystem: You are a pirate captain.\n";

#[tokio::test]
async fn rule_actions_switch_the_persona_for_the_session_and_end_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let personas = home.path().join("personas");
    std::fs::create_dir(&personas).expect("mkdir");
    std::fs::write(personas.join("desk.yaml"), DESK).expect("write");
    std::fs::write(personas.join("pirate.yaml"), PIRATE).expect("write");
    let persona = Persona::load(&personas.join("desk.yaml")).expect("persona");
    let store = Store::open(&home.path().join("db")).expect("store");
    let engine = Arc::new(ScriptedEngine::new([]));
    let bot = Bot::new(persona, engine.clone(), store.clone());
    bot.set_library(parlor::persona::library::Library::new(
        parlor::home::Home::at(home.path()),
    ));
    let s = bot.new_session(Some("guest")).expect("session").id;
    let other = bot.new_session(Some("other guest")).expect("session").id;

    // The switch has no reply of its own: the new persona answers this very message.
    let switched = bot
        .turn(s, "can I talk to the pirate?")
        .finish()
        .await
        .expect("reply");
    assert_eq!(switched.persona, "Captain Flint");
    assert_eq!(switched.source, ReplySource::Model);
    assert!(
        engine.last_prompt()[0]
            .content
            .starts_with("You are a pirate captain."),
        "{:?}",
        engine.last_prompt()
    );
    assert_eq!(bot.session_persona(s).name(), "Captain Flint");
    // Later turns of that session keep the pirate; other sessions keep the bot's persona.
    let later = bot.turn(s, "ahoy").finish().await.expect("reply");
    assert_eq!(later.persona, "Captain Flint");
    assert!(
        engine.last_prompt()[0]
            .content
            .starts_with("You are a pirate captain.")
    );
    let elsewhere = bot.turn(other, "hello").finish().await.expect("reply");
    assert_eq!(elsewhere.persona, "Front Desk");
    assert!(
        engine.last_prompt()[0]
            .content
            .starts_with("You are the front desk")
    );

    // `end_session`: the outcome says so and the state keeps it until a new message comes.
    let bye = bot.turn(other, "goodbye!").finish().await.expect("reply");
    assert_eq!(bye.text, "Goodbye, come again.");
    assert!(bye.ended && !switched.ended);
    assert!(SessionState::load(&store, other).expect("state").ended);
    let again = bot
        .turn(other, "one more thing")
        .finish()
        .await
        .expect("reply");
    assert!(!again.ended, "a new message opens the session again");
    assert!(!SessionState::load(&store, other).expect("state").ended);
}

#[test]
fn check_reports_every_kind_of_scripting_problem_with_its_position() {
    let home = temp_home();
    let out = Command::new(parlor_bin())
        .current_dir(root())
        .arg("--home")
        .arg(home.path())
        .args([
            "check",
            "tests/fixtures/scripting/bad-scripting.yaml",
            "tests/fixtures/scripting/bad-action.yaml",
        ])
        .output()
        .expect("runs parlor");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let f = "tests/fixtures/scripting";
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "{f}/bad-scripting.yaml:9:15: faq.entries[0].answer: unknown macro \"{{{{usr}}}}\"; did you mean {{{{user}}}}?\n\
             {f}/bad-scripting.yaml:10:11: faq.entries[1].id: duplicate FAQ id \"hours\" (also used by entries[0]); ids must be unique\n\
             {f}/bad-scripting.yaml:14:11: knowledge.budget: constant entries take about 18 tokens, over the budget of 10; raise the budget or make some entries keyed\n\
             {f}/bad-scripting.yaml:18:16: knowledge.entries[0].content: takes about 18 tokens, over the knowledge budget of 10; shorten it or raise `knowledge.budget`\n\
             {f}/bad-scripting.yaml:21:20: rules[0].when.regex: invalid regex \"order (\\d+\" at column 7: unclosed group; fix the pattern\n\
             {f}/bad-action.yaml:7:11: rules[0].then[0]: unknown action `escalate`; expected one of reply, handoff, switch_persona, set_var, end_session\n\
             checked 2 personas and 0 bots: 6 problems in 2 files\n"
        )
    );
}

#[test]
fn the_knowledge_budget_counts_tokens_with_the_models_tokenizer() {
    use parlor::chat::ChatMessage;
    use parlor::engine::{Engine, EngineSettings, LlamaEngine};
    use parlor::persona::knowledge::estimate_tokens;
    // Hex digits take far more tokens than the 4-characters-a-token estimate says.
    let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b";
    let plain = "The X200 router has four ports.";
    let budget = estimate_tokens(hex) + estimate_tokens(plain);
    let yaml = format!(
        "name: Kb\nsystem: You answer questions about routers.\nknowledge:\n  budget: {budget}\n  entries:\n    - {{ id: hex, keys: [router], priority: 2, content: \"{hex}\" }}\n    - {{ id: plain, keys: [router], priority: 1, content: \"{plain}\" }}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kb.yaml");
    std::fs::write(&path, yaml).expect("write");
    let persona = Persona::load(&path).expect("persona");
    let mut settings = EngineSettings::new(model_path(), "smollm2-135m");
    settings.context = 2048;
    settings.threads = Some(2);
    let engine = LlamaEngine::load(settings).expect("model loads");

    let system = |t: &str| [ChatMessage::new(Role::System, t)];
    let count = |t: &str| {
        engine.count_tokens(&system(t)).expect("count")
            - engine.count_tokens(&system("")).expect("count")
    };
    let (hex_tokens, plain_tokens) = (count(hex), count(plain));
    assert!(
        hex_tokens + plain_tokens > budget,
        "the estimate fits both ({budget}); the tokenizer must not ({hex_tokens} + {plain_tokens})"
    );
    // The estimate would take both entries; the real counts take what fits, by priority.
    let estimated = persona.knowledge().select(&["which router?"]);
    assert_eq!(estimated.entries.len(), 2);
    let prompt = persona
        .render_prompt(
            &[],
            "which router?",
            &parlor::persona::MacroContext::default(),
            2048,
            &|m: &[ChatMessage]| engine.count_tokens(m),
        )
        .expect("prompt");
    let expected = if hex_tokens <= budget {
        vec!["knowledge:hex".to_string()]
    } else {
        vec!["knowledge:plain".to_string()]
    };
    assert_eq!(prompt.injected, expected);
}
