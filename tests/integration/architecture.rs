//! The architecture as a test: no import circle between the crate's top-level modules (the
//! files and folders right under `src/`), except clap's usual `cli` <-> `cmd`, which count as
//! one module. A module uses another when any of its files names `crate::other` outside a
//! comment. A new circle fails with the modules on it and one file behind each edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that may use each other: one node of the graph.
const JOINED: &[(&str, &str)] = &[("cli", "cmd")];

/// The graph node of a module (`cli+cmd` for a joined pair).
fn node(module: &str) -> String {
    JOINED
        .iter()
        .find(|(a, b)| module == *a || module == *b)
        .map_or_else(|| module.to_string(), |(a, b)| format!("{a}+{b}"))
}

/// module -> (used module -> a file that uses it).
type Graph = BTreeMap<String, BTreeMap<String, PathBuf>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`None` for `lib.rs` and `main.rs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The modules named as `crate::NAME` in `text`, comments left out.
fn uses(text: &str) -> BTreeSet<String> {
    names_after(text, "crate::")
}

/// The names right after `prefix` (`crate::`, `super::`) in `text`, comments left out; for
/// `prefix{a, b::c}`, every name in the braces.
fn names_after(text: &str, prefix: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let after = &rest[at + prefix.len()..];
            if let Some(inner) = after.strip_prefix('{') {
                let inner = inner.split('}').next().unwrap_or("");
                found.extend(inner.split(',').map(ident).filter(|n| !n.is_empty()));
            }
            let name = ident(after);
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(src, f)).collect();
    let mut g = Graph::new();
    for file in &files {
        let Some(from) = module_of(src, file) else {
            continue;
        };
        let from = node(&from);
        let text = std::fs::read_to_string(file).expect("source file is readable");
        let edges = g.entry(from.clone()).or_default();
        for to in uses(&text).into_iter().filter(|m| modules.contains(m)) {
            let to = node(&to);
            if to != from {
                edges.entry(to).or_insert_with(|| file.clone());
            }
        }
    }
    g
}

/// Strongly connected components with more than one node (Tarjan).
fn circles(g: &Graph) -> Vec<Vec<String>> {
    let names: Vec<&String> = g.keys().collect();
    let index_of: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let adj: Vec<Vec<usize>> = names
        .iter()
        .map(|n| {
            g[*n]
                .keys()
                .filter_map(|to| index_of.get(to.as_str()).copied())
                .collect()
        })
        .collect();
    struct Tarjan<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on_stack[v] = true;
            for &w in &self.adj[v] {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(i) if self.on_stack[w] => self.low[v] = self.low[v].min(i),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut scc = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack[w] = false;
                    scc.push(w);
                    if w == v {
                        break;
                    }
                }
                if scc.len() > 1 {
                    self.out.push(scc);
                }
            }
        }
    }
    let n = names.len();
    let mut t = Tarjan {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.out
        .into_iter()
        .map(|scc| {
            let mut names: Vec<String> = scc.into_iter().map(|i| names[i].clone()).collect();
            names.sort();
            names
        })
        .collect()
}

/// Each circle in `found` with its edges and one file behind each.
fn circle_report(g: &Graph, found: &[Vec<String>]) -> String {
    let mut report = String::new();
    for circle in found {
        report.push_str(&format!("circle: {}\n", circle.join(", ")));
        for from in circle {
            for (to, file) in &g[from] {
                if circle.contains(to) {
                    report.push_str(&format!("  {from} -> {to}  ({})\n", file.display()));
                }
            }
        }
    }
    report
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn top_level_modules_form_no_import_circle() {
    let g = graph(&src());
    let found = circles(&g);
    assert!(
        found.is_empty(),
        "import circles between top-level modules:\n{}",
        circle_report(&g, &found)
    );
}

/// The Telegram front end's files (`src/telegram/*.rs`): none names another (`super::NAME`,
/// `crate::telegram::NAME`) that names it back, directly or around a circle. `service` is at
/// the top, the saved records (`state`) and the sending side (`context`) at the bottom: a task
/// module that wants the service is asking for a narrower dependency in `context`.
/// The import graph between the files of `src/telegram/` (`super::NAME` and
/// `crate::telegram::NAME`).
fn telegram_graph() -> Graph {
    let dir = src().join("telegram");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    files.sort();
    let stem = |f: &Path| -> Option<String> {
        let rel = f.strip_prefix(&dir).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| stem(f)).collect();
    assert!(
        modules.len() > 20,
        "the telegram files are found: {modules:?}"
    );
    let mut g = Graph::new();
    for file in &files {
        let from = stem(file).expect("a file under src/telegram");
        let text = std::fs::read_to_string(file).expect("source file is readable");
        let mut named = names_after(&text, "super::");
        named.extend(names_after(&text, "crate::telegram::"));
        let edges = g.entry(from.clone()).or_default();
        for to in named
            .into_iter()
            .filter(|m| modules.contains(m) && *m != from)
        {
            edges.entry(to).or_insert_with(|| file.clone());
        }
    }
    g
}

#[test]
fn telegram_files_form_no_import_circle() {
    let g = telegram_graph();
    let found = circles(&g);
    assert!(
        found.is_empty(),
        "import circles between the telegram files:\n{}",
        circle_report(&g, &found)
    );
}

#[test]
fn the_circle_check_sees_a_circle() {
    // The check itself: a -> b -> c -> a is one circle.
    let mut g = Graph::new();
    let edge = |g: &mut Graph, a: &str, b: &str| {
        g.entry(a.into())
            .or_default()
            .insert(b.into(), PathBuf::from(format!("{a}.rs")));
        g.entry(b.into()).or_default();
    };
    edge(&mut g, "a", "b");
    edge(&mut g, "b", "c");
    edge(&mut g, "c", "a");
    edge(&mut g, "cli+cmd", "a");
    edge(&mut g, "d", "a");
    assert_eq!(circles(&g), vec![vec!["a", "b", "c"]]);
    assert_eq!(node("cmd"), "cli+cmd");
    assert_eq!(node("bot"), "bot");
    assert_eq!(
        uses("use crate::{bot::Bot, chat};\nlet x = crate::store::Store::open(p); // crate::tui"),
        ["bot", "chat", "store"].map(String::from).into()
    );
    assert_eq!(
        names_after(
            "use super::{outbox::Target, state};\nsuper::stream::deliver(s);",
            "super::"
        ),
        ["outbox", "state", "stream"].map(String::from).into()
    );
}

/// The import graph between top-level modules, printed by
/// `cargo test --test integration architecture::print_graph -- --ignored --nocapture`.
#[test]
#[ignore = "prints the graph; run by hand"]
fn print_graph() {
    for (from, tos) in graph(&src()) {
        let tos: Vec<&str> = tos.keys().map(String::as_str).collect();
        println!("{from} -> {}", tos.join(", "));
    }
    println!("\nsrc/telegram/:");
    for (from, tos) in telegram_graph() {
        let tos: Vec<&str> = tos.keys().map(String::as_str).collect();
        println!("{from} -> {}", tos.join(", "));
    }
}
