//! The targets of `parlor bench`, as ratios measured side by side in one run: parlor against
//! the llama.cpp floor (the same work in a plain llama-cpp-2 loop in this process) and, with
//! `--peer`, against a peer server (llama.cpp's llama-server) driven with the same prompts.
//! Machines of one kind differ 2-4x in llama.cpp speed, so absolute milliseconds are not
//! comparable across machines; ratios taken in one run are.
//!
//! Sections record their numbers under the keys below ([`Report::note`]); [`apply`] adds one
//! checked row per target whose numbers are all there (peer rows only with `--peer`).

use super::Report;
use std::time::Duration;

/// The pauses before each message of the turns section: back to back, and 0.3 s (a person).
pub const PAUSES: [Duration; 2] = [Duration::ZERO, Duration::from_millis(300)];

/// How a pause reads in row names.
pub fn pause_label(pause: Duration) -> String {
    if pause.is_zero() {
        "back to back".to_string()
    } else {
        format!("{} s pause", pause.as_secs_f64())
    }
}

/// Key of the last turn's first-token time of `who` (`parlor` or `peer`) with `pause`.
pub fn turns_key(who: &str, pause: Duration) -> String {
    format!("{who}.turns.last.{}ms", pause.as_millis())
}

/// The last turn's llama.cpp floor after `pause` (back to back a turn evaluates more: the
/// turn boundary that a pause pre-fills).
pub fn turns_floor_key(pause: Duration) -> String {
    format!("floor.turns.last.{}ms", pause.as_millis())
}
/// 4 chats: aggregate generation and worst first token.
pub const CHATS4_AGG_PARLOR: &str = "parlor.chats4.aggregate";
/// See [`CHATS4_AGG_PARLOR`].
pub const CHATS4_WORST_PARLOR: &str = "parlor.chats4.worst";
/// See [`CHATS4_AGG_PARLOR`].
pub const CHATS4_AGG_PEER: &str = "peer.chats4.aggregate";
/// See [`CHATS4_AGG_PARLOR`].
pub const CHATS4_WORST_PEER: &str = "peer.chats4.worst";
/// 4 support chats at once, sharing the acme-support persona's prefix: aggregate generation
/// and worst first token.
pub const SUPPORT4_AGG_PARLOR: &str = "parlor.support4.aggregate";
/// See [`SUPPORT4_AGG_PARLOR`].
pub const SUPPORT4_WORST_PARLOR: &str = "parlor.support4.worst";
/// See [`SUPPORT4_AGG_PARLOR`].
pub const SUPPORT4_AGG_PEER: &str = "peer.support4.aggregate";
/// See [`SUPPORT4_AGG_PARLOR`].
pub const SUPPORT4_WORST_PEER: &str = "peer.support4.worst";
/// New chat with the support persona: first token, and the same message with its prefix
/// cached.
pub const NEWCHAT_PARLOR: &str = "parlor.newchat";
/// See [`NEWCHAT_PARLOR`].
pub const NEWCHAT_CACHED: &str = "floor.newchat.cached";
/// See [`NEWCHAT_PARLOR`].
pub const NEWCHAT_PEER: &str = "peer.newchat";
/// Warm restart and its floor.
pub const WARM_PARLOR: &str = "parlor.warm";
/// See [`WARM_PARLOR`].
pub const WARM_FLOOR: &str = "floor.warm";
/// Peak memory of a parlor process and of the peer (n_ctx 4096).
pub const PEAK_PARLOR: &str = "parlor.peak";
/// See [`PEAK_PARLOR`].
pub const PEAK_PEER: &str = "peer.peak";

/// One target: `value / of <= bar` (or `>=` when `at_least`).
struct Target {
    section: &'static str,
    metric: String,
    value: String,
    of: String,
    bar: f64,
    at_least: bool,
}

fn target(section: &'static str, metric: String, value: &str, of: &str, bar: f64) -> Target {
    Target {
        section,
        metric,
        value: value.to_string(),
        of: of.to_string(),
        bar,
        at_least: false,
    }
}

fn all() -> Vec<Target> {
    let mut out = Vec::new();
    for pause in PAUSES {
        let how = pause_label(pause);
        out.push(target(
            "turns",
            format!("last turn first token / llama.cpp floor, {how}"),
            &turns_key("parlor", pause),
            &turns_floor_key(pause),
            1.1,
        ));
        out.push(target(
            "turns",
            format!("last turn first token / peer, {how}"),
            &turns_key("parlor", pause),
            &turns_key("peer", pause),
            0.5,
        ));
    }
    out.push(Target {
        at_least: true,
        ..target(
            "concurrency",
            "4 chats: aggregate generation / peer".into(),
            CHATS4_AGG_PARLOR,
            CHATS4_AGG_PEER,
            1.3,
        )
    });
    out.push(target(
        "concurrency",
        "4 chats: worst first token / peer".into(),
        CHATS4_WORST_PARLOR,
        CHATS4_WORST_PEER,
        0.7,
    ));
    out.push(Target {
        at_least: true,
        ..target(
            "concurrency",
            "4 support chats: aggregate generation / peer".into(),
            SUPPORT4_AGG_PARLOR,
            SUPPORT4_AGG_PEER,
            1.3,
        )
    });
    out.push(target(
        "concurrency",
        "4 support chats: worst first token / peer".into(),
        SUPPORT4_WORST_PARLOR,
        SUPPORT4_WORST_PEER,
        0.7,
    ));
    out.push(target(
        "newchat",
        "new chat right after another chat's reply / same message with the prefix cached".into(),
        NEWCHAT_PARLOR,
        NEWCHAT_CACHED,
        1.2,
    ));
    out.push(target(
        "restart",
        "warm restart / llama.cpp floor".into(),
        WARM_PARLOR,
        WARM_FLOOR,
        1.1,
    ));
    out.push(target(
        "restart",
        "peak memory / peer".into(),
        PEAK_PARLOR,
        PEAK_PEER,
        1.1,
    ));
    out
}

/// Add a checked ratio row for every target whose two numbers were measured.
pub fn apply(report: &mut Report) {
    for t in all() {
        let (Some(v), Some(of)) = (report.value(&t.value), report.value(&t.of)) else {
            continue;
        };
        if of <= 0.0 {
            continue;
        }
        report.check(t.section, &t.metric, v / of, "x", t.bar, t.at_least);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_rows_appear_only_when_both_numbers_were_measured() {
        let mut r = Report::default();
        r.note(&turns_key("parlor", Duration::ZERO), 110.0);
        r.note(&turns_floor_key(Duration::ZERO), 100.0);
        r.note(CHATS4_AGG_PARLOR, 140.0);
        apply(&mut r);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(
            r.rows[0].metric,
            "last turn first token / llama.cpp floor, back to back"
        );
        assert!((r.rows[0].value - 1.1).abs() < 1e-9);
        assert_eq!(r.rows[0].pass, Some(true));
        r.note(CHATS4_AGG_PEER, 120.0);
        r.rows.clear();
        apply(&mut r);
        let agg = r
            .rows
            .iter()
            .find(|row| row.metric.contains("aggregate"))
            .unwrap();
        assert_eq!(agg.target.as_deref(), Some(">= 1.30"));
        assert_eq!(agg.pass, Some(false), "140 / 120 = 1.17 < 1.3");
    }
}
