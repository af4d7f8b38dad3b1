//! Shared persona prefix. Every conversation of a persona starts with the same tokens: the
//! system prompt, the example turns, the greeting, up to where the chat template begins the
//! first user message. A new conversation does not evaluate them again when another
//! conversation (or an earlier process) already did: the engine copies the prefix's KV from a
//! slot that holds it (`llama_memory_seq_cp`; with one KV stream per slot llama.cpp copies the
//! whole stream and the tokens after the prefix are dropped), or loads it from a saved state
//! file keyed by the prefix tokens, the model and the KV settings (checksummed and capped like
//! warm-resume state, in the same directory).
//!
//! Beyond the persona prefix, a new conversation takes the longest start its prompt shares
//! with any slot (a one-line system prompt and the first words of the message, say, as
//! llama-server's prompt cache does): kept in its own slot at no cost, or copied from another
//! slot when it is long enough to pay for the stream copy ([`super::worker`]'s `min_copy`).
//!
//! Greedy replies stay identical with and without sharing. A new conversation evaluates its
//! persona prefix in batches of its own, starting at position 0 (the prompt is cut at the
//! prefix boundary), so the prefix's KV is the same bytes whichever conversation computed it;
//! a shared start cut anywhere else (inside a message) relies on this llama.cpp build
//! computing a sequence's tokens bit-identically in any batch shape, as the `golden_*` tests
//! check. Tests: `prefix::golden_replies_are_identical_with_and_without_the_shared_prefix`,
//! `prefix::golden_a_prompt_start_cut_inside_a_message_is_shared_without_changing_the_reply`.

use super::active::common_prefix;
use crate::chat::{ChatMessage, Role};
use llama_cpp_2::model::{LlamaChatTemplate, LlamaModel};
use llama_cpp_2::token::LlamaToken;
use sha2::{Digest, Sha256};

/// Prefixes shorter than this are not worth a state file or a copy.
pub(super) const MIN_PREFIX: usize = 32;

/// The persona prefix of a prompt: the first `k` messages rendered up to where a following user
/// message begins (the tokens the prompts for two different user messages share), if the
/// prompt `tokens` start with it and go on after it.
pub(super) fn prefix_tokens(
    prompts: &super::prompts::PromptTokens,
    model: &LlamaModel,
    template: &LlamaChatTemplate,
    messages: &[ChatMessage],
    k: usize,
    tokens: &[LlamaToken],
) -> Option<Vec<LlamaToken>> {
    if k == 0 || k >= messages.len() {
        return None;
    }
    let render = |user: &str| {
        let mut m = messages[..k].to_vec();
        m.push(ChatMessage::new(Role::User, user));
        prompts.tokenize(model, template, &m).ok()
    };
    let (a, b) = (render("A")?, render("B")?);
    let n = common_prefix(&a, &b);
    (n >= MIN_PREFIX && n < tokens.len() && tokens[..n] == a[..n]).then(|| a[..n].to_vec())
}

/// The saved-state key of a prefix: its tokens, the window and the KV settings the engine
/// uses (f16 cache, flash attention off); the model is part of the state directory's keys.
pub(super) fn state_key(prefix: &[LlamaToken], window: u32) -> String {
    let mut h = Sha256::new();
    for t in prefix {
        h.update(t.0.to_le_bytes());
    }
    format!(
        "prefix:kv-f16:fa-off:w{window}:n{}:{}",
        prefix.len(),
        hex::encode(&h.finalize()[..16])
    )
}
