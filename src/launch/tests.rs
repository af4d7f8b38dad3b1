use super::*;

fn seeded() -> (tempfile::TempDir, Home) {
    let tmp = tempfile::tempdir().unwrap();
    let home = Home::choose(Some(tmp.path()), None, None).unwrap();
    (tmp, home)
}

fn args(bot: Option<&str>, persona: Option<&str>, model: Option<&str>) -> BotArgs {
    BotArgs {
        bot: bot.map(Into::into),
        persona: persona.map(Into::into),
        model: model.map(Into::into),
    }
}

#[test]
fn no_flags_use_the_terminal_bot() {
    let (_tmp, home) = seeded();
    let p = plan(home.clone(), &BotArgs::default()).unwrap();
    assert_eq!(p.spec.name(), "terminal");
    assert_eq!(p.persona.id(), "assistant");
    assert_eq!(p.model, "smollm2-135m");
    assert_eq!(p.storage_dir, home.join("storage/terminal"));
    assert_eq!(
        p.persona_source,
        Source::File(home.personas_dir().join("assistant.yaml"))
    );
}

#[test]
fn persona_alone_needs_no_bot_file() {
    let (_tmp, home) = seeded();
    std::fs::remove_dir_all(home.bots_dir()).unwrap();
    let p = plan(home.clone(), &args(None, Some("pirate"), None)).unwrap();
    assert_eq!(p.spec.name(), "terminal");
    assert_eq!(p.persona.id(), "pirate");
    assert_eq!(p.model, DEFAULT_MODEL);
    assert_eq!(p.storage_dir, home.join("storage/terminal"));
}

#[test]
fn bot_with_persona_and_model_overrides() {
    let (_tmp, home) = seeded();
    let p = plan(
        home.clone(),
        &args(Some("acme-support"), Some("pirate"), Some("/m/x.gguf")),
    )
    .unwrap();
    assert_eq!(p.spec.name(), "acme-support");
    assert_eq!(p.persona.id(), "pirate");
    assert_eq!(p.model, "/m/x.gguf");
    assert_eq!(p.storage_dir, home.join("storage/acme-support/"));
    assert!(matches!(p.spec.engine(), EngineSpec::Llama(l) if l.slots == 4));
}

#[test]
fn persona_model_used_when_bot_names_none() {
    let (_tmp, home) = seeded();
    std::fs::write(home.bots_dir().join("b.yaml"), "persona: p\n").unwrap();
    std::fs::write(
        home.personas_dir().join("p.yaml"),
        "name: P\nsystem: x\nmodel: tiny.gguf\n",
    )
    .unwrap();
    let p = plan(home, &args(Some("b"), None, None)).unwrap();
    assert_eq!(p.model, "tiny.gguf");
}

#[test]
fn missing_bot_and_persona_say_what_to_do() {
    let (tmp, home) = seeded();
    let e = plan(home.clone(), &args(Some("nobot"), None, None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "--bot: no bot \"nobot\"; bots are YAML files in {}; or give a path to one",
            crate::yaml::display_path(&home.bots_dir())
        )
    );
    let e = plan(home.clone(), &args(Some("acme-suport"), None, None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "--bot: no bot \"acme-suport\"; did you mean \"acme-support\"?"
    );
    let e = plan(home.clone(), &args(Some("/no/b.yaml"), None, None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "/no/b.yaml: no such bot file; check the path given to --bot"
    );
    // An override names the flag, not the bot file, when the persona is missing.
    let e = plan(home.clone(), &args(Some("terminal"), Some("nope"), None)).unwrap_err();
    assert!(
        e.to_string().starts_with("--persona: no persona \"nope\""),
        "{e}"
    );
    let e = plan(home, &args(None, Some("pirat"), None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "--persona: no persona \"pirat\" in {}; did you mean \"pirate\"?",
            crate::yaml::display_path(&tmp.path().join("personas"))
        )
    );
}

#[test]
fn invalid_persona_file_is_reported_with_position() {
    let (_tmp, home) = seeded();
    let file = home.personas_dir().join("bad.yaml");
    std::fs::write(&file, "name: B\nsystem: x\nsampling:\n  temperature: 9\n").unwrap();
    let e = plan(home, &args(None, Some("bad"), None)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "{}:4:16: sampling.temperature: 9 is out of range (0.0 to 2.0)",
            crate::yaml::display_path(&file)
        )
    );
}

#[test]
fn model_resolution() {
    let tmp = tempfile::tempdir().unwrap();
    let models = tmp.path();
    let err = resolve_model(models, "smollm2-135m").unwrap_err();
    assert!(
        err.to_string().contains("parlor model pull smollm2-135m"),
        "{err}"
    );
    let file = models.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(resolve_model(models, "smollm2-135m").unwrap(), file);
    let own = models.join("own.gguf");
    std::fs::write(&own, b"x").unwrap();
    assert_eq!(resolve_model(models, own.to_str().unwrap()).unwrap(), own);
    assert!(resolve_model(models, "/no/such.gguf").is_err());
    assert_eq!(model_label("/a/b/own.gguf"), "own");
    assert_eq!(model_label("smollm2-135m"), "smollm2-135m");
}
