//! Robustness of every YAML reader at once: the raw parser, personas and bot files never panic
//! on hostile or mangled input. Here, above `yaml` and `persona`, because it drives them all.

use crate::yaml::{MAX_DEPTH, MAX_FILE_BYTES, locate, parse, top_level_keys};
use std::path::Path;

/// Inputs that have crashed or hung YAML parsers elsewhere: none may panic here.
const NASTY: &[&str] = &[
    "",
    "\0",
    "\u{feff}name: a",
    "\t\tname:\ta",
    "name: a\n\tsampling: x",
    "{",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "a: &a [*a]",
    "a: *unknown",
    "<<: {name: a}\nsystem: b",
    "<<: 3",
    "name: !!binary aGVsbG8=",
    "name: !custom x",
    "name: 99999999999999999999999999999",
    "sampling: {temperature: 1e999, top_k: -0}",
    "sampling: {temperature: .inf}",
    "? [a, b]\n: c",
    "name: a\nname: b",
    "--- |\n  text",
    "%YAML 1.2\n---\nname: a",
    "%TAG ! tag:x\n--- !a\nname: a",
    "'unterminated",
    "\"\\uD800\"",
    "name: \"\\xff\"",
    "examples:\n  - [1, 2]\n  - null\n  - {user: 1, assistant: [2]}",
    "stop: {a: b}",
    "name: ~\nsystem: null",
    "...",
    "- - - - - - -",
];

fn exercise(text: &str) {
    let _ = parse::<crate::persona::raw::RawPersona>("f.yaml", text);
    let _ = crate::persona::Persona::parse(Path::new("p.yaml"), text);
    let _ = crate::config::BotSpec::parse(Path::new("b.yaml"), text);
    let _ = top_level_keys(text);
    for path in [
        "name",
        "sampling.temperature",
        "examples[3].user",
        "a[0][1]",
        "?",
        "",
    ] {
        let _ = locate(text, path);
    }
}

#[test]
fn nasty_inputs_never_panic() {
    for text in NASTY {
        exercise(text);
    }
    // Deep nesting hits serde_yaml's recursion limit, not the stack.
    exercise(&"[".repeat(MAX_FILE_BYTES));
    exercise(&format!("a: {}1{}", "{b: ".repeat(5000), "}".repeat(5000)));
    // As deep as allowed, many times over (an eighth of the size cap keeps the test quick in
    // debug builds; parsing time is linear in the size).
    let line = format!("{}1{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
    let wide: String = (0..MAX_FILE_BYTES / 8 / (line.len() + 12))
        .map(|i| format!("k{i}: {line}\n"))
        .collect();
    exercise(&wide);
    let block: String = (0..600).map(|i| format!("{}a:\n", " ".repeat(i))).collect();
    exercise(&block);
    // Billion laughs: alias expansion is bounded by serde_yaml's repetition limit.
    let mut laughs = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        laughs.push_str(&format!("{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    exercise(&laughs);
}

#[test]
fn random_mutations_of_valid_files_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let seeds: Vec<&str> = crate::home::BUILTIN_PERSONAS
        .iter()
        .chain(crate::home::BUILTIN_BOTS)
        .map(|(_, t)| *t)
        .collect();
    let alphabet = b"{}[]:-'\"#&*!|>%@`,? \n\t\\0aZ9.~";
    for round in 0..300 {
        let mut bytes = seeds[round % seeds.len()].as_bytes().to_vec();
        for _ in 0..rng.random_range(1..8) {
            let at = rng.random_range(0..bytes.len());
            match rng.random_range(0..3) {
                0 => bytes[at] = alphabet[rng.random_range(0..alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, rng.random::<u8>()),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        exercise(&text);
    }
}
