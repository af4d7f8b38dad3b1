use super::*;

fn parse(text: &str) -> Result<BotSpec, ConfigError> {
    BotSpec::parse(Path::new("bots/b.yaml"), text)
}

fn errors(text: &str) -> Vec<String> {
    parse(text)
        .unwrap_err()
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn minimal_bot_gets_llama_defaults() {
    let spec = parse("persona: assistant\n").unwrap();
    assert_eq!(spec.name(), "b");
    assert_eq!(spec.persona(), "assistant");
    assert_eq!(spec.model(), None);
    assert_eq!(spec.engine(), &EngineSpec::Llama(LlamaSpec::default()));
    assert!(spec.telegram().is_none());
    let home = Home::at("/h");
    assert_eq!(spec.storage_dir(&home), Path::new("/h/storage/b"));
}

#[test]
fn full_llama_bot() {
    let spec = parse(
        "persona: p\nmodel: m\nengine:\n  kind: llama\n  threads: 2\n  context: 2048\n  slots: 4\n  gpu_layers: 10\n  format: as-is\nstorage: data/b\n",
    )
    .unwrap();
    assert_eq!(
        spec.engine(),
        &EngineSpec::Llama(LlamaSpec {
            threads: Some(2),
            context: 2048,
            slots: 4,
            gpu_layers: 10,
            format: crate::models::ModelFormat::AsIs,
        })
    );
    assert_eq!(spec.model(), Some("m"));
    assert_eq!(spec.storage_dir(&Home::at("/h")), Path::new("/h/data/b"));
    assert_eq!(spec.storage_dir(&Home::at("/h")), Path::new("/h/data/b"));
}

#[test]
fn openai_bot() {
    let spec = parse(
        "persona: p\nengine:\n  kind: openai\n  base_url: http://127.0.0.1:8080/v1\n  model: qwen\n  api_key_env: MY_KEY\n",
    )
    .unwrap();
    assert_eq!(
        spec.engine(),
        &EngineSpec::OpenAi(OpenAiSpec {
            base_url: "http://127.0.0.1:8080/v1".into(),
            model: "qwen".into(),
            api_key_env: Some("MY_KEY".into()),
            context: DEFAULT_CONTEXT,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            extended_sampling: true,
        })
    );
    let strict = parse(
        "persona: p\nengine:\n  kind: openai\n  base_url: https://api.openai.com/v1\n  model: gpt\n  extended_sampling: false\n",
    )
    .unwrap();
    assert!(matches!(
        strict.engine(),
        EngineSpec::OpenAi(OpenAiSpec {
            extended_sampling: false,
            ..
        })
    ));
}

#[test]
fn openai_problems_all_reported() {
    assert_eq!(
        errors("persona: p\nengine:\n  kind: openai\n  threads: 2\n  base_url: localhost\n"),
        [
            "bots/b.yaml:3:3: engine.model: missing (required with `kind: openai`); the model name the server knows",
            "bots/b.yaml:4:12: engine.threads: only used with `kind: llama`; remove it, or set `kind: llama`",
            "bots/b.yaml:5:13: engine.base_url: \"localhost\" is not an http:// or https:// URL; e.g. `base_url: http://127.0.0.1:8080/v1`",
        ]
    );
}

#[test]
fn unknown_engine_kind_has_hint() {
    assert_eq!(
        errors("persona: p\nengine:\n  kind: lama\n"),
        ["bots/b.yaml:3:9: engine.kind: unknown value \"lama\"; did you mean \"llama\"?"]
    );
}

#[test]
fn engine_format_is_validated() {
    assert_eq!(
        errors("persona: p\nengine:\n  format: q8\n"),
        ["bots/b.yaml:3:11: engine.format: unknown value \"q8\"; expected one of: auto, as-is"]
    );
    assert_eq!(
        errors(
            "persona: p\nengine:\n  kind: openai\n  base_url: http://h/v1\n  model: m\n  format: auto\n"
        ),
        [
            "bots/b.yaml:6:11: engine.format: only used with `kind: llama`; remove it, or set `kind: llama`"
        ]
    );
}

#[test]
fn llama_only_fields_rejected_for_llama_and_ranges_checked() {
    assert_eq!(
        errors("persona: p\nengine:\n  model: x\n  slots: 0\n"),
        [
            "bots/b.yaml:3:10: engine.model: only used with `kind: openai`; for llama.cpp, name the model with the top-level `model:`",
            "bots/b.yaml:4:10: engine.slots: 0 is out of range (1 to 256)",
        ]
    );
}

#[test]
fn persona_is_required() {
    assert_eq!(
        errors("model: m\n"),
        [
            "bots/b.yaml:1:1: persona: missing (required); name a persona in personas/, e.g. `persona: assistant`"
        ]
    );
}

#[test]
fn missing_persona_is_found_with_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::at(tmp.path());
    let spec = BotSpec::parse(Path::new("bots/b.yaml"), "# c\npersona: pirat\n").unwrap();
    let problem = spec.find_persona(&home).unwrap_err();
    assert_eq!(
        problem.location,
        Some(Location {
            line: 2,
            column: 10
        })
    );
    assert_eq!(problem.field, "persona");
    assert_eq!(problem.hint.as_deref(), Some("did you mean \"pirate\"?"));
    assert!(spec.clone().find_persona(&home).is_err());
    let ok = BotSpec::parse(Path::new("bots/b.yaml"), "persona: pirate\n").unwrap();
    assert!(ok.find_persona(&home).is_ok());
}

#[test]
fn shipped_bots_are_valid() {
    for (name, text) in crate::home::BUILTIN_BOTS {
        let spec = BotSpec::parse(&Path::new("bots").join(format!("{name}.yaml")), text)
            .unwrap_or_else(|e| panic!("bots/{name}.yaml: {e}"));
        assert!(
            spec.find_persona(&Home::at("/nonexistent")).is_ok(),
            "{name}"
        );
    }
}

#[test]
fn storage_takes_a_directory_or_a_mapping_with_retention() {
    let spec = parse("persona: p\nstorage: data/b\n").unwrap();
    assert_eq!(spec.retention(), None);
    let spec = parse("persona: p\nstorage:\n  dir: data/b\n  retention:\n    days: 30\n").unwrap();
    assert_eq!(spec.storage_dir(&Home::at("/h")), Path::new("/h/data/b"));
    assert_eq!(
        spec.retention(),
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
    let spec = parse("persona: p\nstorage:\n  retention: { days: 1 }\n").unwrap();
    assert_eq!(spec.storage_dir(&Home::at("/h")), Path::new("/h/storage/b"));
}

#[test]
fn bad_retention_is_reported_at_its_line() {
    assert_eq!(
        errors("persona: p\nstorage:\n  retention:\n    days: 0\n"),
        vec!["bots/b.yaml:4:11: storage.retention.days: 0 is out of range (1 to 36500)"]
    );
    let e = errors("persona: p\nstorage:\n  retention: {}\n");
    assert!(
        e[0].starts_with("bots/b.yaml:3:14: storage.retention.days: missing"),
        "{e:?}"
    );
    let e = errors("persona: p\nstorage:\n  retention:\n    weeks: 2\n");
    assert!(
        e[0] == "bots/b.yaml:4:5: storage.retention.weeks: unknown field; known fields: days",
        "{e:?}"
    );
}
