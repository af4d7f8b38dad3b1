//! Unit tests of FAQ matching: variants, typos, thresholds, validation, and a timing helper.

use super::*;

fn entry(id: &str, questions: &[&str], answer: &str) -> RawFaqEntry {
    RawFaqEntry {
        id: id.into(),
        questions: questions.iter().map(|q| q.to_string()).collect(),
        answer: answer.into(),
        tags: Vec::new(),
    }
}

fn sample() -> Faq {
    let raw = RawFaq {
        threshold: 0.7,
        inject_threshold: 0.35,
        entries: vec![
            entry(
                "shipping-time",
                &[
                    "How long does shipping take?",
                    "When will my order arrive?",
                    "delivery time",
                ],
                "Orders ship within 1 business day and arrive in 3-5 business days.",
            ),
            entry(
                "returns",
                &["How do I return a product?", "What is your return policy?"],
                "You can return any product within 30 days.",
            ),
            entry(
                "warranty",
                &["How long is the warranty?", "Is my device under warranty?"],
                "Every device has a 2-year warranty.",
            ),
            entry(
                "reset",
                &["How do I factory reset my router?", "reset procedure"],
                "Hold the reset button for 10 seconds.",
            ),
            entry(
                "hours",
                &["What are your opening hours?", "When are you open?"],
                "Monday to Friday, 9:00 to 17:00.",
            ),
        ],
    };
    Faq::from_raw(&raw, "faq").expect("valid")
}

fn best(faq: &Faq, msg: &str) -> (String, f32) {
    let m = faq.rank(msg, 1);
    let m = m.first().unwrap_or_else(|| panic!("no match for {msg:?}"));
    (faq.entries()[m.entry].id.clone(), m.score)
}

#[test]
fn exact_variant_scores_one() {
    let faq = sample();
    let (id, score) = best(&faq, "How long does shipping take?");
    assert_eq!(id, "shipping-time");
    assert!((score - 1.0).abs() < 1e-5, "{score}");
}

#[test]
fn any_variant_matches_its_entry() {
    let faq = sample();
    for (msg, want) in [
        ("when will my order arrive", "shipping-time"),
        ("what's your return policy", "returns"),
        ("is my device still under warranty?", "warranty"),
        ("when are you open", "hours"),
    ] {
        assert_eq!(best(&faq, msg).0, want, "{msg}");
    }
}

#[test]
fn punctuation_case_and_inflection_do_not_matter() {
    let faq = sample();
    let (id, score) = best(&faq, "HOW LONG DOES SHIPPING TAKE!!!");
    assert_eq!(id, "shipping-time");
    assert!(score > 0.99);
    let (id, _) = best(&faq, "returning a product");
    assert_eq!(id, "returns");
}

#[test]
fn typos_still_match() {
    let faq = sample();
    for (msg, want) in [
        ("how long is the waranty", "warranty"),
        ("how long does shpiping take", "shipping-time"),
        ("factory rest my routr", "reset"),
        ("opening hours?", "hours"),
    ] {
        let (id, score) = best(&faq, msg);
        assert_eq!(id, want, "{msg}");
        assert!(score >= 0.35, "{msg}: {score}");
    }
}

#[test]
fn thresholds_decide_answer_inject_or_miss() {
    let faq = sample();
    match faq.decide("How long is the warranty?") {
        FaqDecision::Answer(e, _) => assert_eq!(e.id, "warranty"),
        other => panic!("expected answer, got {other:?}"),
    }
    // Same topic, more to it: a fact for the model, not a direct answer.
    match faq.decide("does the warranty cover water damage") {
        FaqDecision::Inject(e, s) => {
            assert_eq!(e.id, "warranty");
            assert!(s < 0.7, "{s}");
        }
        other => panic!("expected inject, got {other:?}"),
    }
    // The topic word drowned in unrelated ones: nothing.
    assert_eq!(
        faq.decide("my cat chewed the cable and the warranty thing, is it covered by insurance"),
        FaqDecision::Miss
    );
    assert_eq!(
        faq.decide("tell me a joke about pirates"),
        FaqDecision::Miss
    );
    assert_eq!(faq.decide("hello!"), FaqDecision::Miss);
}

#[test]
fn raising_the_threshold_turns_answers_into_injections() {
    let base = sample();
    let strict = Faq::new(base.entries().to_vec(), 1.01, 0.3);
    assert!(matches!(
        strict.decide("How long is the warranty?"),
        FaqDecision::Inject(..)
    ));
}

#[test]
fn ranking_orders_by_confidence() {
    let faq = sample();
    let ranked = faq.rank(
        "how long is the warranty and how long does shipping take",
        5,
    );
    assert!(ranked.len() >= 2);
    assert!(ranked.windows(2).all(|w| w[0].score >= w[1].score));
}

#[test]
fn empty_faq_never_matches() {
    assert_eq!(Faq::default().decide("anything"), FaqDecision::Miss);
}

#[test]
fn validation_reports_duplicates_and_empty_parts() {
    let raw = RawFaq {
        threshold: 1.5,
        inject_threshold: 0.4,
        entries: vec![
            entry("a", &["shipping"], "x"),
            entry("a", &["returns"], "y"),
            entry("b", &[], ""),
            entry("c", &["how is it?"], "z"),
        ],
    };
    let problems = Faq::from_raw(&raw, "faq").unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    assert!(
        text.contains(&"faq.threshold: 1.5 is out of range (0.0 to 1.0)".to_string()),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("faq.entries[1].id: duplicate FAQ id \"a\"")),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("faq.entries[2].questions: is empty"))
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("faq.entries[2].answer: is empty"))
    );
    assert!(
        text.iter()
            .any(|t| t.starts_with("faq.entries[3].questions[0]:"))
    );
}

#[test]
fn inject_threshold_above_threshold_is_rejected() {
    let raw = RawFaq {
        threshold: 0.5,
        inject_threshold: 0.6,
        entries: vec![],
    };
    let p = Faq::from_raw(&raw, "faq").unwrap_err();
    assert_eq!(p[0].field, "faq.inject_threshold");
}

/// Synthetic FAQ of `n` entries with 3 variants each over a vocabulary of made-up words.
pub(crate) fn synthetic(n: usize) -> Faq {
    // Pseudo-random words of 4 to 10 letters (a fixed LCG: the same FAQ every run).
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    let words: Vec<String> = (0..1500)
        .map(|_| {
            let len = 4 + next() % 7;
            (0..len)
                .map(|_| (b'a' + (next() % 26) as u8) as char)
                .collect()
        })
        .collect();
    let entries = (0..n)
        .map(|i| {
            let w = |k: usize| words[(i * 7 + k * 13) % words.len()].as_str();
            FaqEntry {
                id: format!("e{i}"),
                questions: vec![
                    format!("how do I {} the {} {}", w(0), w(1), w(2)),
                    format!("what is the {} of {} {}", w(3), w(1), w(4)),
                    format!("{} {} {} {}", w(5), w(6), w(0), w(2)),
                ],
                answer: format!("answer {i}"),
                tags: Vec::new(),
            }
        })
        .collect();
    Faq::new(entries, 0.75, 0.45)
}

#[test]
fn synthetic_faq_finds_its_own_variants() {
    let faq = synthetic(1000);
    for i in [0usize, 17, 999] {
        let q = faq.entries()[i].questions[1].clone();
        let m = faq.rank(&q, 1);
        assert_eq!(faq.entries()[m[0].entry].id, format!("e{i}"), "{q}");
    }
}

/// Timing helper (not a wall-clock assertion): run with
/// `cargo test --lib faq::tests::bench_1000_entries -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: prints timings"]
fn bench_1000_entries() {
    let t = std::time::Instant::now();
    let faq = synthetic(1000);
    let build = t.elapsed();
    let mut queries: Vec<String> = Vec::new();
    for i in (0..1000).step_by(7) {
        let e = &faq.entries()[i];
        queries.push(e.questions[0].clone());
        // A typo in every word longer than 3 letters.
        queries.push(
            e.questions[2]
                .split(' ')
                .map(|w| {
                    let mut c: Vec<char> = w.chars().collect();
                    if c.len() > 3 {
                        c.swap(1, 2);
                    }
                    c.into_iter().collect::<String>()
                })
                .collect::<Vec<_>>()
                .join(" "),
        );
        queries.push("tell me something unrelated about the weather today".to_string());
    }
    let rounds = 5;
    let t = std::time::Instant::now();
    let mut hits = 0usize;
    for _ in 0..rounds {
        for q in &queries {
            if !matches!(faq.decide(q), FaqDecision::Miss) {
                hits += 1;
            }
        }
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / (rounds * queries.len()) as f64;
    for kind in 0..3 {
        let t = std::time::Instant::now();
        let qs: Vec<&String> = queries.iter().skip(kind).step_by(3).collect();
        for q in &qs {
            let _ = faq.decide(q);
        }
        let per = t.elapsed().as_secs_f64() * 1e6 / qs.len() as f64;
        let name = ["exact variant", "typo in every word", "unrelated"][kind];
        println!("faq bench: {name}: {per:.1} us per message");
    }
    println!(
        "faq bench: 1000 entries / 3000 variants, index build {:.1} ms, {} queries x {rounds}: {per:.1} us per message ({hits} non-miss decisions)",
        build.as_secs_f64() * 1e3,
        queries.len()
    );
}

#[test]
#[ignore = "calibration printout"]
fn print_scores() {
    let faq = sample();
    for q in [
        "does the warranty cover water damage",
        "my cat chewed the cable and the warranty thing, is it covered by insurance",
        "how long is my warranty",
        "warranty?",
        "can I return it",
        "shipping to canada",
    ] {
        let r = faq.rank(q, 2);
        let s: Vec<String> = r
            .iter()
            .map(|m| format!("{}={:.2}", faq.entries()[m.entry].id, m.score))
            .collect();
        println!("{q:60} {s:?}");
    }
}
