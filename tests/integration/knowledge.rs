//! The shipped acme-support persona's `knowledge:` entry and an injected FAQ fact reach the
//! real model's prompt and show in its greedy reply.

use crate::common::{embedding_model_path, model_path};
use parlor::bot::{Bot, TurnOptions};
use parlor::chat::ReplySource;
use parlor::engine::{EngineSettings, LlamaEngine, Sampling};
use parlor::persona::Persona;
use parlor::store::Store;
use parlor::support::index::Retriever;
use std::path::Path;
use std::sync::Arc;

/// The shipped persona, with one more FAQ entry (a fact the system prompt does not have) and
/// the answer threshold raised to 1.0, so FAQ matches short of an exact one are given to the
/// model as facts instead of being answered directly. Without `grounded`, its grounding is
/// off: a fact close to a question reaches generation instead of a "did you mean".
fn persona(grounded: bool) -> Persona {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let answer_threshold = "\n  threshold: 0.68\n";
    let entries = "\n  inject_threshold: 0.35\n  entries:\n";
    assert!(
        text.contains(answer_threshold) && text.contains(entries),
        "the acme FAQ's thresholds moved: update this test"
    );
    assert!(
        text.contains("\nknowledge:\n"),
        "acme-support ships knowledge"
    );
    let grounding = "\ngrounding:\n  enabled: true\n";
    assert!(text.contains(grounding), "acme-support is grounded");
    let text = if grounded {
        text
    } else {
        text.replace(grounding, "\ngrounding:\n  enabled: false\n")
    };
    let text = text.replace(answer_threshold, "\n  threshold: 1.0\n").replace(
        entries,
        &format!(
            "{entries}    - id: pickup\n      questions: [Can I pick up my router at your shop?]\n      answer: Yes, you can pick up your router at the Acme shop in Leipzig.\n"
        ),
    );
    Persona::parse(&path, &text).expect("the persona parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_knowledge_entry_shows_in_a_real_reply() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 2048;
    s.threads = Some(2);
    let engine = Arc::new(LlamaEngine::load(s).expect("model loads"));
    let bot = Bot::new(
        persona(true),
        engine,
        Store::open(&dir.path().join("db")).unwrap(),
    );
    // As a running bot has it: semantic retrieval with the embedding model.
    bot.set_retriever(Retriever::load(
        &embedding_model_path(),
        Some(dir.path().join("cache")),
    ));
    let session = bot.new_session(Some("k")).unwrap().id;
    let opts = || TurnOptions {
        sampling: Some(Sampling::greedy()),
        max_tokens: Some(24),
        ..Default::default()
    };
    let ask = |text: &'static str| {
        let reply = bot.turn_with(session, text, opts());
        async move {
            tokio::time::timeout(crate::engine::DEADLINE, reply.finish())
                .await
                .expect("the real engine answered within the deadline")
                .expect("the turn succeeded")
        }
    };

    let light = ask("What does a red blinking light mean?").await;
    assert_eq!(light.source, ReplySource::Model);
    assert_eq!(light.stats.injected, ["knowledge:status-light"]);
    assert!(
        light.text.contains("no internet connection"),
        "the knowledge entry's fact is in the reply: {:?}",
        light.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_faq_fact_shows_in_a_real_reply() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = EngineSettings::new(model_path(), "smollm2-135m");
    s.context = 2048;
    s.threads = Some(2);
    let engine = Arc::new(LlamaEngine::load(s).expect("model loads"));
    let bot = Bot::new(
        persona(false),
        engine,
        Store::open(&dir.path().join("db")).unwrap(),
    );
    bot.set_retriever(Retriever::load(
        &embedding_model_path(),
        Some(dir.path().join("cache")),
    ));
    let session = bot.new_session(Some("f")).unwrap().id;
    let opts = TurnOptions {
        sampling: Some(Sampling::greedy()),
        max_tokens: Some(24),
        ..Default::default()
    };
    let pickup = tokio::time::timeout(
        crate::engine::DEADLINE,
        // A paraphrase (not the entry's own question, which scores 1.0 and is answered).
        bot.turn_with(
            session,
            "Is there a shop where I can collect my router?",
            opts,
        )
        .finish(),
    )
    .await
    .expect("the real engine answered within the deadline")
    .expect("the turn succeeded");
    assert_eq!(
        pickup.source,
        ReplySource::Model,
        "given to the model, not answered"
    );
    assert!(
        pickup.stats.injected.iter().any(|i| i.contains("pickup")),
        "the pickup fact was injected: {:?} (scores {:?})",
        pickup.stats.injected,
        pickup.stats.retrieval
    );
    assert!(
        pickup.text.contains("Leipzig"),
        "the injected FAQ fact is in the reply: {:?}",
        pickup.text
    );
}
