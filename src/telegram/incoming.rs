//! Reading teloxide's [`Message`] the way the bot needs it: ids as `i64`, group or private,
//! text or caption, the sender, and what a message holds when it is not text ([`Media`]), with
//! the reply that names it and says what the bot can read.

use super::outbox::Target;
use teloxide::types::{AllowedUpdate, Message, MessageKind};

/// The updates the bot asks for (polling and webhook alike).
pub const ALLOWED_UPDATES: [AllowedUpdate; 6] = [
    AllowedUpdate::Message,
    AllowedUpdate::EditedMessage,
    AllowedUpdate::CallbackQuery,
    AllowedUpdate::MyChatMember,
    AllowedUpdate::ChannelPost,
    AllowedUpdate::EditedChannelPost,
];

/// `/cmd@bot args` -> (`cmd` lowercased, `args`). None when the text is not a command.
pub fn parse_command(text: &str) -> Option<(String, String)> {
    let rest = text.trim().strip_prefix('/')?;
    let (head, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let cmd = head.split('@').next().unwrap_or("");
    if cmd.is_empty() || !cmd.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    Some((cmd.to_ascii_lowercase(), args.trim().to_string()))
}

/// The chat id.
pub fn chat_id(m: &Message) -> i64 {
    m.chat.id.0
}

/// Where an answer to `m` goes.
pub fn target_of(m: &Message) -> Target {
    Target {
        chat: chat_id(m),
        group: !m.chat.is_private(),
    }
}

/// The message id within its chat.
pub fn message_id(m: &Message) -> i64 {
    i64::from(m.id.0)
}

/// The sender's user id (0 when there is none, as in channels).
pub fn sender_id(m: &Message) -> i64 {
    m.from
        .as_ref()
        .and_then(|u| i64::try_from(u.id.0).ok())
        .unwrap_or(0)
}

/// The sender's first name, when there is one.
pub fn first_name(m: &Message) -> Option<&str> {
    m.from
        .as_ref()
        .map(|u| u.first_name.as_str())
        .filter(|n| !n.is_empty())
}

/// Sent by a bot (the bot's own messages, other bots in a group).
pub fn from_bot(m: &Message) -> bool {
    m.from.as_ref().is_some_and(|u| u.is_bot)
}

/// The text of a message, or the caption of a photo, video or document.
pub fn text_of(m: &Message) -> &str {
    m.text().or(m.caption()).unwrap_or("")
}

/// A service message (someone joined or left, a title changed, a message was pinned, ...):
/// not written by a person to the bot.
pub fn is_service(m: &Message) -> bool {
    !matches!(m.kind, MessageKind::Common(_))
}

/// What a message without text holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// A photo.
    Photo,
    /// A voice message.
    Voice,
    /// An audio file.
    Audio,
    /// A video.
    Video,
    /// A round video message.
    VideoNote,
    /// A sticker.
    Sticker,
    /// A GIF.
    Animation,
    /// A file.
    Document,
    /// A location or venue.
    Location,
    /// A contact card.
    Contact,
    /// A poll.
    Poll,
    /// A dice throw.
    Dice,
    /// Anything else.
    Other,
}

impl Media {
    /// What `m` holds (call it for messages without text or caption).
    pub fn of(m: &Message) -> Self {
        if m.photo().is_some() {
            Self::Photo
        } else if m.voice().is_some() {
            Self::Voice
        } else if m.audio().is_some() {
            Self::Audio
        } else if m.video().is_some() {
            Self::Video
        } else if m.video_note().is_some() {
            Self::VideoNote
        } else if m.sticker().is_some() {
            Self::Sticker
        } else if m.animation().is_some() {
            Self::Animation
        } else if m.document().is_some() {
            Self::Document
        } else if m.location().is_some() || m.venue().is_some() {
            Self::Location
        } else if m.contact().is_some() {
            Self::Contact
        } else if m.poll().is_some() {
            Self::Poll
        } else if m.dice().is_some() {
            Self::Dice
        } else {
            Self::Other
        }
    }

    /// What it is called in a reply ("a voice message").
    pub fn name(self) -> &'static str {
        match self {
            Self::Photo => "a photo",
            Self::Voice => "a voice message",
            Self::Audio => "an audio file",
            Self::Video => "a video",
            Self::VideoNote => "a video message",
            Self::Sticker => "a sticker",
            Self::Animation => "a GIF",
            Self::Document => "a file",
            Self::Location => "a location",
            Self::Contact => "a contact",
            Self::Poll => "a poll",
            Self::Dice => "a dice throw",
            Self::Other => "a kind of message I cannot open",
        }
    }

    /// The reply: what was sent, and what the bot reads.
    pub fn reply(self) -> String {
        let hint = match self {
            Self::Photo | Self::Video | Self::Document | Self::Animation => {
                " If it shows the problem, please describe it in words, or send it again with a caption saying what you need."
            }
            Self::Voice | Self::Audio | Self::VideoNote => " Please type your question.",
            Self::Location | Self::Contact => {
                " If you need help with an address or a person, please type the details."
            }
            _ => " Please type your question.",
        };
        format!(
            "I got {}, but I can only read text (and the captions of photos, videos and files).{hint}",
            self.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn message(extra: serde_json::Value) -> Message {
        let mut m = json!({
            "message_id": 7, "date": 0,
            "chat": {"id": -5, "type": "supergroup", "title": "G"},
            "from": {"id": 3, "is_bot": false, "first_name": "Ann"},
        });
        for (k, v) in extra.as_object().expect("an object") {
            m[k] = v.clone();
        }
        serde_json::from_value(m).expect("a message")
    }

    #[test]
    fn reads_ids_text_and_captions() {
        let m = message(json!({"text": "hi"}));
        assert_eq!((chat_id(&m), message_id(&m), sender_id(&m)), (-5, 7, 3));
        assert!(target_of(&m).group && !is_service(&m) && !from_bot(&m));
        assert_eq!((text_of(&m), first_name(&m)), ("hi", Some("Ann")));
        let photo = json!([{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}]);
        let p = message(json!({"photo": photo, "caption": "broken?"}));
        assert_eq!(text_of(&p), "broken?");
        assert_eq!(Media::of(&p), Media::Photo);
    }

    #[test]
    fn names_what_was_sent() {
        let v = message(
            json!({"voice": {"file_id": "a", "file_unique_id": "b", "duration": 2, "mime_type": "audio/ogg"}}),
        );
        assert_eq!(text_of(&v), "");
        assert_eq!(Media::of(&v), Media::Voice);
        assert!(
            Media::Voice
                .reply()
                .starts_with("I got a voice message, but I can only read text")
        );
        let left =
            message(json!({"left_chat_member": {"id": 9, "is_bot": false, "first_name": "B"}}));
        assert!(is_service(&left));
    }

    #[test]
    fn a_stored_message_reads_back_the_same() {
        let m = message(json!({"text": "hi", "reply_to_message": {
            "message_id": 6, "date": 0, "chat": {"id": -5, "type": "supergroup", "title": "G"},
            "from": {"id": 4242, "is_bot": true, "first_name": "Bot"}, "text": "earlier"}}));
        let back: Message = serde_json::from_value(serde_json::to_value(&m).unwrap()).unwrap();
        assert_eq!(back, m);
    }
}
