//! The "asks for a person" intent, pure: whether a message requests a human rather than
//! mentioning one ("someone changed my wifi password") or asking how to reach the business
//! ("can I call you?", "what is your email?", which the FAQ answers). A request is one of:
//!
//! - a contact verb aimed at a person: "talk to the owner", "put me through to an engineer";
//! - a want aimed at a person: "I need a real person", "I'd like a manager";
//! - a person asked to act for the customer: "can a human help me", "get someone to call me";
//! - "is there someone I can talk to", "are you a bot?";
//! - a bare person word: "agent!", "manager please".
//!
//! A person is a human role ([`ROLE`]: human, agent, staff, owner, manager, engineer, ...).
//! With sentence embeddings, the cosine with prototype requests ([`PROTOTYPES`]) is a second
//! signal for wordings the patterns miss; it counts only when it is clearly above the
//! message's best FAQ cosine ([`semantic_asks`]), so a contact question close to both ("can I
//! call support") stays with the FAQ.

use regex::Regex;
use std::sync::LazyLock;

/// Prototype requests for the semantic signal. Part of the embedding cache: changing them
/// needs a new cache format (`support::index`).
pub const PROTOTYPES: [&str; 11] = [
    "I want to talk to a human",
    "Can I speak to a real person?",
    "Connect me with an agent please",
    "I need to talk to someone from your support team",
    "Transfer me to a customer service representative",
    "Is there a person I can chat with instead of a bot?",
    "Let me talk to a human being",
    "get me a real person",
    "I would like to speak to the manager",
    "Can a member of staff contact me?",
    "Please pass me to an engineer",
];

/// Cosine with the closest prototype at or above which a message may ask for a person (chosen
/// on the tuning parts of the eval sets with all-MiniLM-L6-v2; unrelated support questions stay
/// below 0.45). Kept for all-mpnet-base-v2: on the tuning parts every request is still handed
/// off and nothing else is.
pub const SEMANTIC_THRESHOLD: f32 = 0.62;

/// How far the prototype cosine must be above the message's best FAQ cosine (chosen on the
/// tuning parts: contact questions such as "can I call you?" are as close to the FAQ's contact
/// entry as to the prototypes).
pub const SEMANTIC_MARGIN: f32 = 0.05;

/// Human roles a request can name (a regex fragment, no groups that capture).
pub const ROLE: &str = r"(?:human(?:\s+beings?)?s?|(?:real|live|actual)\s+(?:person|people|humans?)|person|people|agents?|operators?|representatives?|reps?|someone|somebody|anyone|anybody|whoever|staff(?:\s+members?)?|members?\s+of\s+(?:staff|(?:your|the)\s+team)|colleagues?|employees?|managers?|supervisors?|owners?|boss|engineers?|technicians?|techs?|specialists?|advis[eo]rs?|consultants?|support\s+(?:team|agents?|staff|person|people)|team\s+members?)";

/// Roles specific enough to be asked for without a contact verb ("I need a manager"), unlike
/// "someone" ("I need someone's address").
const NAMED_ROLE: &str = r"(?:human(?:\s+beings?)?|(?:real|live|actual)\s+(?:person|human)|person|agent|operator|representative|staff(?:\s+member)?|member\s+of\s+(?:staff|(?:your|the)\s+team)|colleague|employee|manager|supervisor|owner|boss|engineer|technician|specialist|advis[eo]r|consultant|support\s+(?:agent|person)|someone\s+(?:real|human|from))";

/// The end of a role word that is not a possessive ("the owner's email" names no request).
const END: &str = r"(?:[\s.,;:!?)]|$)";

static REQUEST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?ix)
        # a contact verb aimed at a person
          \b(?:talk|speak|chat|connect|transfer|escalate|pass|hand|put\s+me\s+through|(?:put\s+me\s+|get\s+)?in\s+touch)(?:ing)?\b
          [^.?!]{{0,30}}?\b{ROLE}{END}
        # a want aimed at a person
        | \b(?:want|need|like|get|give|prefer|rather|request)\b[^.?!]{{0,20}}?
          \b(?:a|an|the|some|to|with|your|one\s+of\s+your)\b[^.?!]{{0,12}}?\b{NAMED_ROLE}{END}
        # a person asked to act for the customer
        | \b(?:can|could|would|will|please|pls|get|have|ask|let|want|need|like|rather)\b[^.?!]{{0,15}}?
          \b{ROLE}\b[^.?!]{{0,25}}?
          \b(?:call|ring|phone|contact|message|text|e-?mail|reach|get\s+back\s+to|reply\s+to|write\s+to|help|assist|look\s+at|check|handle|deal\s+with|take\s+over)\b
          [^.?!]{{0,10}}?\b(?:me|us|my|our|this|it)\b
        # is there someone to talk to
        | \b(?:is\s+there|are\s+there|do\s+you\s+have)\b[^.?!]{{0,15}}?\b{ROLE}\b[^.?!]{{0,25}}?\b(?:talk|speak|chat)\b
        # are you a bot
        | \b(?:are\s+you|is\s+this)\s+(?:a\s+)?(?:bot|robot|machine)\b
        "
    ))
    .expect("regex")
});

static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^\W*(?:(?:a|an|the|real|live)\s+)?{ROLE}(?:\s+(?:please|pls|now|asap))?\W*$"
    ))
    .expect("regex")
});

/// Whether the words of `text` ask for a person.
pub fn asks_for_person(text: &str) -> bool {
    let text = text.trim();
    if text.chars().count() > 400 {
        return false;
    }
    // Curly apostrophes ("I’d like") read as straight ones.
    let text = text.replace('\u{2019}', "'");
    BARE.is_match(&text) || REQUEST.is_match(&text)
}

/// Whether the semantic signal asks for a person: the cosine with the closest prototype
/// (`person`) is at least [`SEMANTIC_THRESHOLD`] and [`SEMANTIC_MARGIN`] above the best cosine
/// with an FAQ variant (`best_faq`).
pub fn semantic_asks(person: f32, best_faq: f32) -> bool {
    person >= SEMANTIC_THRESHOLD && person - best_faq >= SEMANTIC_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_for_a_person_are_recognised() {
        for t in [
            "I want to talk to a human",
            "can i speak to someone please",
            "Connect me with an agent",
            "human please",
            "Agent!",
            "manager please",
            "I need a real person",
            "put me through to your support team",
            "Could you transfer me to a representative?",
            "Are you a bot?",
            "let me chat with a staff member",
            "I’d like to speak to the manager",
            "put me in touch with the owner",
            "I need to speak with an engineer about a migration",
            "please escalate this to a technician",
            "can a human help me with a complicated order?",
            "could a manager contact me about my invoice",
            "can a support agent look at my account",
            "please get someone from the shop to message me",
            "I want a call back from your staff",
            "I'd rather deal with a real person than a chatbot",
            "is there an employee I could talk to",
            "can somebody call me back",
            "pass me to one of your specialists",
            "I want to contact the owner",
        ] {
            assert!(asks_for_person(t), "should ask for a person: {t}");
        }
    }

    #[test]
    fn mentioning_a_person_or_a_contact_channel_is_not_a_request() {
        for t in [
            "someone changed my wifi password, where do I find the default one?",
            "My neighbour is a human rights lawyer, can he return my router?",
            "How many people can use the R2 Pro at once?",
            "Does anyone know how long the warranty is?",
            "the agent in the shop said the warranty is 3 years, is that right?",
            "How do I reset my router?",
            "can I call you?",
            "can I call support",
            "how can I reach support?",
            "what number do I phone to speak about an order",
            "what is the owner's email address?",
            "who bakes the bread?",
            "is the owner also the head baker?",
            "my manager wants a cake for the office, how far ahead should I order it",
            "does someone check my order before it ships?",
            "our engineer wants to know how to restore a backup",
            "can someone else on my team get access to the dashboard",
            "I talked to an agent last week and he promised a refund",
            "When can I call you?",
        ] {
            assert!(!asks_for_person(t), "should not ask for a person: {t}");
        }
    }

    #[test]
    fn the_semantic_signal_needs_the_threshold_and_a_margin_over_the_faq() {
        assert!(semantic_asks(0.70, 0.40));
        assert!(!semantic_asks(0.60, 0.10), "below the threshold");
        assert!(!semantic_asks(0.70, 0.68), "as close to an FAQ entry");
        assert!(semantic_asks(
            SEMANTIC_THRESHOLD,
            SEMANTIC_THRESHOLD - SEMANTIC_MARGIN
        ));
    }
}
