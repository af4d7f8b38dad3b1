//! Fitting a prompt into the context budget: the persona preamble (system, examples, greeting)
//! and the new user message are kept, history is added newest first while it fits, and the
//! oldest messages are dropped. Costs are counted per message and summed (an overestimate: each
//! count includes the template's framing), so the count callback runs once per message instead
//! of once per candidate prompt; the final prompt is counted once more, exactly.

use super::Prompt;
use crate::chat::ChatMessage;
use crate::engine::EngineError;

type Count<'a> = &'a dyn Fn(&[ChatMessage]) -> Result<u32, EngineError>;

/// The prompt `preamble ++ newest history that fits ++ user` within `budget` tokens.
/// `preamble[0]` is the system message; if even the whole preamble and the user message do not
/// fit, the examples and greeting are left out (logged); if the system message and the user
/// message alone do not fit, [`EngineError::PromptTooLong`].
pub(super) fn fit(
    mut preamble: Vec<ChatMessage>,
    history: &[ChatMessage],
    user: ChatMessage,
    budget: u32,
    count: Count<'_>,
) -> Result<Prompt, EngineError> {
    let cost = |m: &ChatMessage| count(std::slice::from_ref(m));
    let user_cost = cost(&user)?;
    let mut fixed = user_cost;
    for m in &preamble {
        fixed = fixed.saturating_add(cost(m)?);
    }
    if fixed > budget && preamble.len() > 1 {
        preamble.truncate(1);
        fixed = user_cost.saturating_add(cost(&preamble[0])?);
        tracing::warn!(
            budget,
            "the persona's examples and greeting do not fit the context window and were left out"
        );
    }

    // Newest first: how many of the most recent history messages fit by the summed estimate.
    let mut used = fixed;
    let mut keep = 0;
    for m in history.iter().rev() {
        let c = cost(m)?;
        if used.saturating_add(c) > budget {
            break;
        }
        used += c;
        keep += 1;
    }
    let mut from = history.len() - keep;

    // Verify the assembled prompt once; drop more only if the estimate was not an overestimate
    // after all (tokenisation across message boundaries can differ slightly).
    loop {
        let messages = assemble(&preamble, &history[from..], &user);
        let tokens = count(&messages)?;
        if tokens <= budget {
            return Ok(Prompt {
                messages,
                preamble: preamble.len(),
                trimmed: from as u32,
                tokens,
                injected: Vec::new(),
            });
        }
        if from < history.len() {
            from += 1;
        } else if preamble.len() > 1 {
            preamble.truncate(1);
        } else {
            return Err(EngineError::PromptTooLong {
                needed: tokens,
                available: budget,
            });
        }
    }
}

fn assemble(
    preamble: &[ChatMessage],
    history: &[ChatMessage],
    user: &ChatMessage,
) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(preamble.len() + history.len() + 1);
    out.extend_from_slice(preamble);
    out.extend_from_slice(history);
    out.push(user.clone());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::Role;

    /// One token per word plus 2 of framing per message.
    fn words(messages: &[ChatMessage]) -> Result<u32, EngineError> {
        Ok(messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u32 + 2)
            .sum())
    }

    fn msg(role: Role, words: usize, tag: &str) -> ChatMessage {
        let text = std::iter::repeat_n(tag, words)
            .collect::<Vec<_>>()
            .join(" ");
        ChatMessage::new(role, text)
    }

    fn history(n: usize) -> Vec<ChatMessage> {
        (0..n)
            .map(|i| {
                let role = if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                };
                msg(role, 8, &format!("h{i}")) // 10 tokens each
            })
            .collect()
    }

    #[test]
    fn everything_fits_nothing_trimmed() {
        let sys = vec![msg(Role::System, 8, "s")];
        let p = fit(sys, &history(4), msg(Role::User, 8, "u"), 1000, &words).unwrap();
        assert_eq!(p.messages.len(), 6);
        assert_eq!(p.trimmed, 0);
        assert_eq!(p.tokens, 60);
    }

    #[test]
    fn oldest_history_dropped_first() {
        // system 10 + user 10 + room for 3 history messages of 10 = 50.
        let sys = vec![msg(Role::System, 8, "s")];
        let h = history(6);
        let p = fit(sys, &h, msg(Role::User, 8, "u"), 55, &words).unwrap();
        assert_eq!(p.trimmed, 3);
        assert_eq!(p.tokens, 50);
        assert_eq!(p.messages[0].role, Role::System);
        assert_eq!(&p.messages[1..4], &h[3..]);
        assert_eq!(p.messages[4].content, msg(Role::User, 8, "u").content);
    }

    #[test]
    fn exact_budget_is_enough() {
        let sys = vec![msg(Role::System, 8, "s")];
        let p = fit(sys, &history(2), msg(Role::User, 8, "u"), 40, &words).unwrap();
        assert_eq!((p.trimmed, p.tokens), (0, 40));
    }

    #[test]
    fn system_and_user_alone_too_long_is_refused() {
        let sys = vec![msg(Role::System, 8, "s")];
        let err = fit(sys, &history(2), msg(Role::User, 50, "u"), 30, &words).unwrap_err();
        assert_eq!(
            err,
            EngineError::PromptTooLong {
                needed: 62,
                available: 30
            }
        );
    }

    #[test]
    fn examples_dropped_before_refusing() {
        let pre = vec![
            msg(Role::System, 8, "s"),
            msg(Role::User, 18, "e"),
            msg(Role::Assistant, 18, "e"),
        ];
        let p = fit(pre, &history(2), msg(Role::User, 8, "u"), 25, &words).unwrap();
        assert_eq!(p.messages.len(), 2);
        assert_eq!(p.trimmed, 2);
        assert_eq!(p.tokens, 20);
    }

    #[test]
    fn underestimating_counter_is_corrected_by_final_check() {
        // Per message 1 token, but the whole prompt costs 10 per message: the final exact
        // count forces further trimming.
        let count = |m: &[ChatMessage]| -> Result<u32, EngineError> {
            Ok(if m.len() == 1 { 1 } else { 10 * m.len() as u32 })
        };
        let sys = vec![msg(Role::System, 1, "s")];
        let p = fit(sys, &history(5), msg(Role::User, 1, "u"), 40, &count).unwrap();
        assert_eq!(p.messages.len(), 4);
        assert_eq!(p.trimmed, 3);
        assert_eq!(p.tokens, 40);
    }

    #[test]
    fn counter_errors_propagate() {
        let count = |_: &[ChatMessage]| -> Result<u32, EngineError> {
            Err(EngineError::Generation("template".into()))
        };
        let sys = vec![msg(Role::System, 1, "s")];
        assert!(fit(sys, &[], msg(Role::User, 1, "u"), 40, &count).is_err());
    }

    #[test]
    fn counts_each_message_once_plus_final_check() {
        let calls = std::cell::Cell::new(0u32);
        let count = |m: &[ChatMessage]| {
            calls.set(calls.get() + 1);
            words(m)
        };
        let sys = vec![msg(Role::System, 8, "s")];
        let p = fit(sys, &history(100), msg(Role::User, 8, "u"), 10_000, &count).unwrap();
        assert_eq!(p.trimmed, 0);
        assert_eq!(calls.get(), 1 + 1 + 100 + 1);
    }
}
