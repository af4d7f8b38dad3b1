//! The Acme FAQ on questions it was never tuned on: paraphrases written after the thresholds
//! were chosen (none of them is a variant in the persona or a step of its test file), and
//! off-topic or uncovered router questions. A wrong instant answer is the costly mistake: no
//! uncovered question may be answered from the FAQ; covered ones must reach the right entry
//! (answered, or given to the model as a fact).

use parlor::persona::Persona;
use parlor::persona::faq::FaqDecision;
use std::path::PathBuf;

/// Covered questions and the entry that answers each.
const COVERED: &[(&str, &str)] = &[
    ("how many days does delivery usually take?", "shipping-time"),
    ("when should my router get here?", "shipping-time"),
    ("do I have to pay for shipping?", "shipping-cost"),
    ("what does delivery cost?", "shipping-cost"),
    ("can you ship a router to Canada?", "shipping-international"),
    ("do you deliver abroad?", "shipping-international"),
    ("how do I track my package?", "order-tracking"),
    (
        "I'd like to cancel the order I placed yesterday",
        "cancel-order",
    ),
    ("can I return the router if I don't like it?", "returns"),
    ("what's the procedure for returning a product?", "returns"),
    (
        "how soon is my money refunded after a return?",
        "refund-time",
    ),
    ("is there a warranty on the R1?", "warranty"),
    (
        "my router is defective, can I get a replacement?",
        "warranty-claim",
    ),
    ("how to factory reset the router", "reset"),
    ("what's the admin login of the router?", "default-login"),
    (
        "which IP address opens the router settings?",
        "default-login",
    ),
    ("how can I update my router's firmware?", "firmware-update"),
    ("what's the current firmware version?", "firmware-version"),
    ("are you open on Saturday?", "opening-hours"),
    ("how do I contact customer support?", "contact"),
    ("what's your support email?", "contact"),
    ("which routers do you have?", "products"),
    ("can I build a mesh network with two routers?", "mesh"),
    ("do you accept PayPal or credit cards?", "payment"),
];

/// Questions the FAQ does not cover: never answered from it.
const UNCOVERED: &[&str] = &[
    "can you recommend a good book about cooking?",
    "what's the weather like tomorrow?",
    "my laptop battery drains fast",
    "how do I set up port forwarding?",
    "does the router support WPA3?",
    "is the R2 Pro good for gaming?",
    "can I use the router with a fiber modem?",
    "tell me a joke",
    "what is the capital of France?",
    "how do I change the wifi channel?",
    "can I hide my network name?",
    "do you have a shop in Berlin?",
];

#[test]
fn the_acme_faq_handles_questions_it_was_not_tuned_on() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("personas/acme-support.yaml");
    let persona = Persona::load(&path).expect("acme-support loads");
    let faq = persona.faq();
    let mut report = Vec::new();
    let (mut answered, mut reached, mut lowest_answer) = (0, 0, f32::MAX);
    for (q, want) in COVERED {
        let (how, id, score) = match faq.decide(q) {
            FaqDecision::Answer(e, s) => ("answer", e.id.as_str(), s),
            FaqDecision::Inject(e, s) => ("inject", e.id.as_str(), s),
            FaqDecision::Miss => ("miss", "-", 0.0),
        };
        if id == *want {
            reached += 1;
            if how == "answer" {
                answered += 1;
                lowest_answer = lowest_answer.min(score);
            }
        }
        let top: Vec<String> = faq
            .rank(q, 2)
            .iter()
            .map(|m| format!("{}={:.2}", faq.entries()[m.entry].id, m.score))
            .collect();
        report.push(format!(
            "{how:6} {score:.2} {id:22} want {want:22} {q}  {top:?}"
        ));
    }
    let mut highest_uncovered = 0.0f32;
    let mut wrongly_answered = Vec::new();
    for q in UNCOVERED {
        let best = faq.rank(q, 1).first().map_or(0.0, |m| m.score);
        highest_uncovered = highest_uncovered.max(best);
        if let FaqDecision::Answer(e, s) = faq.decide(q) {
            wrongly_answered.push(format!("{q} -> {} ({s:.2})", e.id));
        }
        report.push(format!("uncov. {best:.2} {q}"));
    }
    let report = report.join("\n");
    println!(
        "{report}\ncovered: {answered}/{n} answered, {reached}/{n} reached the right entry; lowest right answer {lowest_answer:.2}, highest uncovered {highest_uncovered:.2}",
        n = COVERED.len()
    );
    assert!(
        wrongly_answered.is_empty(),
        "uncovered questions answered from the FAQ: {wrongly_answered:?}\n{report}"
    );
    // Measured when this test was written (entry-level coverage): 16 of 24 reach their entry,
    // 15 are answered directly; the misses are words the FAQ has no variant for ("abroad",
    // "Canada", "get here"). These bars keep matching from getting worse.
    assert!(
        reached * 3 >= COVERED.len() * 2,
        "at least two thirds of covered questions must reach their entry\n{report}"
    );
    assert!(
        answered * 10 >= COVERED.len() * 6,
        "at least 60% of covered questions must be answered directly\n{report}"
    );
}
