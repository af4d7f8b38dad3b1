//! Unit tests of importers and card export on the fixtures in `tests/fixtures/import/`.

use super::card::{ExportSource, to_card_v2};
use super::*;
use serde_json::json;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

#[test]
fn card_v2_maps_fields_and_keeps_the_rest() {
    let doc = import_file(&fixture("aria.card-v2.json")).expect("imports");
    assert_eq!(doc.name, "Aria");
    assert_eq!(
        doc.system,
        "Stay in character as {{bot}}.\n\n{{bot}} is a cheerful lighthouse keeper on a small northern island. She knows every ship that passes.\n\n{{bot}}'s personality: warm, curious, a little stubborn\n\nScenario: {{user}} arrives at the lighthouse during a storm."
    );
    assert_eq!(
        doc.greeting.as_deref(),
        Some("*opens the heavy door* Come in, {{user}}, before the wind takes you!")
    );
    assert_eq!(doc.examples.len(), 2);
    assert_eq!(doc.examples[1].user, "Are you ever lonely?");
    assert_eq!(
        doc.examples[1].assistant,
        "The gulls keep me company.\nAnd the radio."
    );
    assert_eq!(
        doc.description.as_deref(),
        Some("A cozy slice-of-life character.")
    );
    let k = doc.knowledge.as_ref().expect("character_book -> knowledge");
    assert_eq!((k.budget, k.scan_depth, k.entries.len()), (200, 3, 3));
    assert_eq!(k.entries[0].id.as_deref(), Some("lamp"));
    assert_eq!(k.entries[0].priority, 5);
    assert_eq!(
        k.entries[0].extensions.get("position"),
        Some(&json!("before_char"))
    );
    assert!(k.entries[1].constant);
    assert!(k.entries[2].selective);
    assert_eq!(k.entries[2].secondary_keys, vec!["when", "schedule"]);
    let card = &doc.extensions["card"];
    assert_eq!(card["spec"], "chara_card_v2");
    assert_eq!(
        card["post_history_instructions"],
        "Keep replies under three sentences."
    );
    assert_eq!(
        card["alternate_greetings"][0],
        "*waves from the gallery* Up here, {{user}}!"
    );
    assert_eq!(card["tags"], json!(["slice of life", "cozy"]));
    assert_eq!(card["extensions"]["talkativeness"], "0.5");
    assert_eq!(card["character_book"]["name"], "Island lore");
}

#[test]
fn card_v3_and_v1_import() {
    let v3 = import_file(&fixture("nova.card-v3.json")).expect("v3");
    assert_eq!(v3.name, "Nova");
    assert_eq!(
        v3.system,
        "{{bot}} is a ship's AI who speaks in short, precise sentences."
    );
    let card = &v3.extensions["card"];
    assert_eq!(card["spec"], "chara_card_v3");
    assert_eq!(card["nickname"], "Nov");
    assert_eq!(card["group_only_greetings"][0], "Nova online for the crew.");
    assert_eq!(card["assets"][0]["type"], "icon");
    assert!(
        card.get("mes_example").is_none(),
        "empty fields are not kept"
    );

    let v1 = import_file(&fixture("legacy.card-v1.json")).expect("v1");
    assert_eq!(
        v1.system,
        "{{bot}} is a retired sailor who tells tall tales to {{user}}.\n\n{{bot}}'s personality: gruff but kind"
    );
    assert_eq!(v1.extensions["card"]["spec"], "chara_card_v1");
}

#[test]
fn png_cards_are_read_from_their_text_chunk() {
    let committed = std::fs::read(fixture("aria.png")).expect("fixture");
    let json = std::fs::read_to_string(fixture("aria.card-v2.json")).expect("fixture");
    assert_eq!(
        committed,
        png::card_png(Some(&json), None),
        "tests/fixtures/import/aria.png is what card_png writes for aria.card-v2.json"
    );
    let from_png = import_bytes(&committed, "aria.png").expect("png");
    let from_json = import_bytes(json.as_bytes(), "aria.json").expect("json");
    assert_eq!(from_png, from_json);
}

#[test]
fn png_prefers_ccv3_over_chara() {
    let v2 = r#"{"spec":"chara_card_v2","data":{"name":"Two","description":"d"}}"#;
    let v3 = r#"{"spec":"chara_card_v3","data":{"name":"Three","description":"d"}}"#;
    let doc = import_bytes(&png::card_png(Some(v2), Some(v3)), "x.png").expect("imports");
    assert_eq!(doc.name, "Three");
}

#[test]
fn damaged_or_cardless_png_is_reported() {
    let mut bytes = png::card_png(Some(r#"{"name":"X"}"#), None);
    let err = import_bytes(&png::card_png(None, None), "plain.png").unwrap_err();
    assert!(err.to_string().contains("holds no character card"), "{err}");
    let n = bytes.len();
    bytes[n - 20] ^= 0xff; // inside IDAT
    let err = import_bytes(&bytes, "bad.png").unwrap_err();
    assert!(err.to_string().contains("wrong checksum"), "{err}");
    let err = import_bytes(&bytes[..30], "short.png").unwrap_err();
    assert!(
        err.to_string().contains("the file ends first") || err.to_string().contains("truncated"),
        "{err}"
    );
}

#[test]
fn modelfile_maps_parameters_messages_and_keeps_template() {
    let doc = import_file(&fixture("helper.Modelfile")).expect("imports");
    assert_eq!(doc.name, "llama3.2");
    assert_eq!(
        doc.system,
        "You are Mario from Super Mario Bros.\nAnswer as Mario, the assistant, only."
    );
    assert_eq!(doc.model, None, "an Ollama model name is not a GGUF path");
    assert_eq!(doc.sampling["temperature"], json!(0.3));
    assert_eq!(doc.sampling["top_k"], json!(30));
    assert_eq!(doc.sampling["max_tokens"], json!(200));
    assert_eq!(doc.context["window"], json!(4096));
    assert_eq!(doc.stop, vec!["<|eot_id|>", "User:"]);
    assert_eq!(doc.examples.len(), 2);
    assert_eq!(doc.examples[1].user, "Is Sacramento in Canada?");
    assert_eq!(doc.examples[1].assistant, "no");
    let m = &doc.extensions["modelfile"];
    assert_eq!(m["from"], "llama3.2:3b");
    assert_eq!(m["license"], "MIT");
    assert_eq!(m["parameters"]["mirostat"], "0");
    assert!(
        m["template"]
            .as_str()
            .expect("template")
            .contains("{{ .System }}")
    );
}

#[test]
fn modelfile_errors_name_the_line() {
    let err = import_bytes(b"FROM x.gguf\nPARAMETER temperature hot\n", "M").unwrap_err();
    assert_eq!(
        err.to_string(),
        "Modelfile line 2: PARAMETER temperature needs a number, found \"hot\""
    );
    let err = import_bytes(b"FROM x.gguf\nSYSTEM \"\"\"never closed\n", "M").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("Modelfile line 2: a `\"\"\"` string"),
        "{err}"
    );
    let doc = import_bytes(b"FROM ./models/tiny.gguf\n", "M").expect("imports");
    assert_eq!(doc.model.as_deref(), Some("./models/tiny.gguf"));
    assert_eq!(doc.name, "tiny");
}

#[test]
fn unknown_formats_are_refused() {
    let err = import_bytes(b"hello world", "notes.txt").unwrap_err();
    assert!(err.to_string().contains("is not a character card"), "{err}");
    let err = import_bytes(b"{\"spec\":\"chara_card_v9\"}", "x.json").unwrap_err();
    assert!(
        err.to_string()
            .contains("unsupported spec \"chara_card_v9\""),
        "{err}"
    );
}

#[test]
fn imported_yaml_has_a_header_and_block_text() {
    let doc = import_file(&fixture("aria.card-v2.json")).expect("imports");
    let yaml = doc.to_yaml("aria.card-v2.json");
    assert!(
        yaml.starts_with(
            "# Imported by `parlor persona import` from aria.card-v2.json\nname: Aria\n"
        )
    );
    assert!(yaml.contains("knowledge:\n  budget: 200\n"), "{yaml}");
}

#[test]
fn export_gives_back_what_import_kept() {
    let doc = import_file(&fixture("aria.card-v2.json")).expect("imports");
    let src = ExportSource {
        name: doc.name.clone(),
        description: doc.description.clone(),
        system: doc.system.clone(),
        greeting: doc.greeting.clone(),
        examples: doc
            .examples
            .iter()
            .map(|e| (e.user.clone(), e.assistant.clone()))
            .collect(),
        knowledge: doc.knowledge.clone(),
        extensions: doc.extensions.clone(),
        parlor: serde_json::Map::default(),
    };
    let card = to_card_v2(&src);
    assert_eq!(card["spec"], "chara_card_v2");
    let data = &card["data"];
    assert_eq!(
        data["first_mes"],
        "*opens the heavy door* Come in, {{user}}, before the wind takes you!"
    );
    assert_eq!(data["tags"], json!(["slice of life", "cozy"]));
    assert_eq!(
        data["post_history_instructions"],
        "Keep replies under three sentences."
    );
    assert_eq!(data["character_book"]["name"], "Island lore");
    assert_eq!(
        data["character_book"]["entries"][0]["position"],
        "before_char"
    );
    assert_eq!(
        data["character_book"]["entries"][2]["secondary_keys"],
        json!(["when", "schedule"])
    );
    assert!(
        data["description"]
            .as_str()
            .expect("text")
            .contains("{{char}} is a cheerful")
    );
    // Import of the export gives the same persona back (system text, examples, knowledge).
    let again = card::from_json(&card.to_string()).expect("re-imports");
    assert_eq!(again.system, doc.system);
    assert_eq!(again.examples, doc.examples);
    assert_eq!(again.greeting, doc.greeting);
    assert_eq!(again.knowledge, doc.knowledge);
}

/// Regenerates `tests/fixtures/import/aria.png` from `aria.card-v2.json`:
/// `cargo test --lib import::tests::write_png_fixture -- --ignored`.
#[test]
#[ignore = "fixture generator"]
fn write_png_fixture() {
    let json = std::fs::read_to_string(fixture("aria.card-v2.json")).expect("fixture");
    std::fs::write(fixture("aria.png"), png::card_png(Some(&json), None)).expect("write");
}
