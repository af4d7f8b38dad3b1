//! Unit tests of knowledge selection: keys, scan depth, selective entries, budget, priorities.

use super::*;

fn e(id: &str, keys: &[&str], content: &str) -> RawKnowledgeEntry {
    RawKnowledgeEntry {
        id: Some(id.into()),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        content: content.into(),
        constant: false,
        enabled: true,
        priority: 0,
        insertion_order: 0,
        case_sensitive: false,
        selective: false,
        secondary_keys: Vec::new(),
        extensions: BTreeMap::new(),
    }
}

fn kb(budget: u32, scan_depth: usize, entries: Vec<RawKnowledgeEntry>) -> Knowledge {
    Knowledge::from_raw(
        &RawKnowledge {
            budget,
            scan_depth,
            entries,
        },
        "knowledge",
    )
    .expect("valid")
}

fn ids(sel: &Selection<'_>) -> Vec<String> {
    sel.entries.iter().map(|e| e.id.clone()).collect()
}

#[test]
fn constant_entries_always_and_keyed_entries_on_their_keys() {
    let mut company = e("company", &[], "Acme makes routers.");
    company.constant = true;
    let k = kb(
        100,
        4,
        vec![
            company,
            e("x200", &["X200", "x-200"], "The X200 has 4 ports."),
        ],
    );
    assert_eq!(ids(&k.select(&["hello"])), vec!["company"]);
    assert_eq!(
        ids(&k.select(&["how many ports on the x200?"])),
        vec!["company", "x200"]
    );
}

#[test]
fn keys_match_whole_words_only() {
    let k = kb(100, 4, vec![e("cat", &["cat"], "Cats are fine.")]);
    assert!(k.select(&["a category"]).entries.is_empty());
    assert_eq!(ids(&k.select(&["my cat, again"])), vec!["cat"]);
}

#[test]
fn case_sensitive_keys_need_the_case() {
    let mut ent = e("apple", &["Apple"], "The company.");
    ent.case_sensitive = true;
    let k = kb(100, 4, vec![ent]);
    assert!(k.select(&["an apple a day"]).entries.is_empty());
    assert_eq!(ids(&k.select(&["Apple stock"])), vec!["apple"]);
}

#[test]
fn only_the_last_scan_depth_messages_are_scanned() {
    let k = kb(100, 2, vec![e("x200", &["x200"], "4 ports.")]);
    assert!(k.select(&["the x200", "ok", "and now?"]).entries.is_empty());
    assert_eq!(ids(&k.select(&["x", "the x200", "and now?"])), vec!["x200"]);
}

#[test]
fn selective_entries_need_a_secondary_key_too() {
    let mut ent = e("x200-reset", &["x200"], "Hold reset 10 s.");
    ent.selective = true;
    ent.secondary_keys = vec!["reset".into(), "factory".into()];
    let k = kb(100, 4, vec![ent]);
    assert!(k.select(&["x200 ports"]).entries.is_empty());
    assert_eq!(
        ids(&k.select(&["x200 factory settings"])),
        vec!["x200-reset"]
    );
}

#[test]
fn disabled_entries_are_never_used() {
    let mut ent = e("old", &["x200"], "Old text.");
    ent.enabled = false;
    let k = kb(100, 4, vec![ent]);
    assert!(k.select(&["x200"]).entries.is_empty());
}

#[test]
fn budget_keeps_higher_priority_and_orders_by_insertion_order() {
    // Each content is 40 characters = 10 estimated tokens; the budget holds two.
    let text = "0123456789012345678901234567890123456789";
    let mut low = e("low", &["router"], text);
    low.priority = 1;
    low.insertion_order = 0;
    let mut high = e("high", &["router"], text);
    high.priority = 10;
    high.insertion_order = 5;
    let mut mid = e("mid", &["router"], text);
    mid.priority = 5;
    mid.insertion_order = 1;
    let k = kb(20, 4, vec![low, high, mid]);
    let sel = k.select(&["my router"]);
    assert_eq!(ids(&sel), vec!["mid", "high"]);
    assert_eq!(sel.tokens, 20);
    assert_eq!(sel.dropped, vec!["low".to_string()]);
}

#[test]
fn the_budget_counts_with_the_given_tokenizer() {
    // Estimated at 10 tokens each, both fit a budget of 20; a tokenizer that counts 15 for the
    // digits leaves room for one, and the selection reports the counted tokens.
    let text = "0123456789012345678901234567890123456789";
    let mut a = e("a", &["router"], text);
    a.priority = 2;
    let b = e("b", &["router"], "the router has four ports and one uplink");
    let k = kb(20, 4, vec![a, b]);
    assert_eq!(ids(&k.select(&["router"])), vec!["a", "b"]);
    let counted = |e: &KnowledgeEntry| {
        if e.raw.content.starts_with('0') {
            15
        } else {
            10
        }
    };
    let sel = k.select_by(&["router"], &counted);
    assert_eq!(ids(&sel), vec!["a"]);
    assert_eq!(sel.tokens, 15);
    assert_eq!(sel.dropped, vec!["b".to_string()]);
}

#[test]
fn constant_entries_win_the_budget_over_keyed_ones() {
    let text = "0123456789012345678901234567890123456789";
    let mut c = e("c", &[], text);
    c.constant = true;
    c.insertion_order = 9;
    let mut k1 = e("k1", &["router"], text);
    k1.priority = 100;
    let k = kb(10, 4, vec![k1, c]);
    let sel = k.select(&["router"]);
    assert_eq!(ids(&sel), vec!["c"]);
    assert_eq!(sel.dropped, vec!["k1".to_string()]);
}

#[test]
fn validation_reports_over_budget_and_missing_keys() {
    let mut big = e("big", &[], &"x".repeat(400));
    big.constant = true;
    let mut sel = e("sel", &["a"], "y");
    sel.selective = true;
    let raw = RawKnowledge {
        budget: 50,
        scan_depth: 4,
        entries: vec![big, e("nokeys", &[], "z"), sel],
    };
    let problems: Vec<String> = Knowledge::from_raw(&raw, "knowledge")
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(problems.contains(&"knowledge.entries[0].content: takes about 100 tokens, over the knowledge budget of 50; shorten it or raise `knowledge.budget`".to_string()), "{problems:#?}");
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("knowledge.budget: constant entries take about 100 tokens"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("knowledge.entries[1].keys: is empty"))
    );
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("knowledge.entries[2].secondary_keys: is empty"))
    );
}

#[test]
fn yaml_defaults_follow_character_book() {
    let raw: RawKnowledgeEntry = serde_yaml::from_str("keys: [a]\ncontent: hi\n").expect("parses");
    assert!(raw.enabled);
    assert!(!raw.constant && !raw.selective && !raw.case_sensitive);
    assert!(serde_yaml::from_str::<RawKnowledgeEntry>("content: hi\nbogus: 1\n").is_err());
}
