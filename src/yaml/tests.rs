use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Doc {
    name: String,
    #[serde(default)]
    sampling: Inner,
    #[serde(default)]
    examples: Vec<Ex>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Inner {
    temperature: Option<f32>,
    top_k: Option<i32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Ex {
    user: String,
    assistant: String,
}

fn err(text: &str) -> String {
    parse::<Doc>("f.yaml", text).unwrap_err().to_string()
}

#[test]
fn explore() {
    for t in [
        "name: a\nsampling:\n  temprature: 1\n",
        "name: a\nsampling:\n  temperature: hot\n",
        "name: a\nnmae: b\n",
        "sampling: {}\n",
        "name: a\nexamples:\n  - user: x\n    assistant: y\n  - user: x\n",
        "name: [a\n",
        "name: a\n  b: c\n",
        "- a\n- b\n",
        "just text\n",
        "name: a\nsampling: 3\n",
        "name: a\nexamples: {}\n",
        "name: a\n---\nname: b\n",
        "name: &x a\nsampling: *y\n",
        "name: a\nsampling:\n  top_k: -3000000000000\n",
    ] {
        println!("{t:?}\n  => {}", err(t));
    }
    println!(
        "{:?}",
        locate(
            "name: a\nsampling:\n  temperature: 3.5\n",
            "sampling.temperature"
        )
    );
    println!(
        "{:?}",
        locate(
            "name: a\nexamples:\n  - user: x\n    assistant: y\n  - user: z\n    assistant: w\n",
            "examples[1].assistant"
        )
    );
    println!(
        "{:?}",
        locate(
            "name: a\nsampling: {top_k: 3, temperature: 9}\n",
            "sampling.temperature"
        )
    );
    println!(
        "{:?}",
        locate("name: a\nsampling:\n  top_k: 3\n", "sampling.temperature")
    );
    println!(
        "{:?}",
        locate("name: a\nsystem: |\n  hello\n  {{x}}\n", "system")
    );
}
