//! The fake Bot API's answers to each method, its scripted failures, and the messages it
//! returns as the Bot API would.

use super::{BLOCKED, BOT_ID, BOT_USERNAME, Failure, Inner, visible_text};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub(super) fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

pub(super) fn err(status: u16, description: &str, retry_after: Option<u64>) -> Response {
    let mut body = json!({"ok": false, "error_code": status, "description": description});
    if let Some(r) = retry_after {
        body["parameters"] = json!({"retry_after": r});
    }
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        axum::Json(body),
    )
        .into_response()
}

/// The reply for a scripted failure.
pub(super) fn failure(f: &Failure) -> Response {
    match f {
        Failure::RetryAfter(s) => err(
            429,
            &format!("Too Many Requests: retry after {s}"),
            Some(*s),
        ),
        Failure::Status(code) => err(*code, "Internal Server Error", None),
        Failure::ParseEntities => err(
            400,
            "Bad Request: can't parse entities: unsupported start tag",
            None,
        ),
        Failure::Blocked => err(403, BLOCKED, None),
        Failure::Conflict => err(
            409,
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            None,
        ),
    }
}

pub(super) fn answer(g: &mut Inner, method: &str, p: &Value) -> (Response, bool) {
    let chat = p
        .get("chat_id")
        .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(0);
    let text = p.get("text").and_then(Value::as_str).unwrap_or("");
    let html = p.get("parse_mode").and_then(Value::as_str) == Some("HTML");
    let check = |text: &str| -> Result<(), Box<Response>> {
        let visible = if html {
            visible_text(text).map_err(|e| {
                Box::new(err(
                    400,
                    &format!("Bad Request: can't parse entities: {e}"),
                    None,
                ))
            })?
        } else {
            text.to_string()
        };
        if visible.trim().is_empty() {
            return Err(Box::new(err(
                400,
                "Bad Request: message text is empty",
                None,
            )));
        }
        if visible.encode_utf16().count() > 4096 {
            return Err(Box::new(err(400, "Bad Request: message is too long", None)));
        }
        Ok(())
    };
    match method {
        "getme" => (
            ok(
                json!({"id": BOT_ID, "is_bot": true, "first_name": "Acme Support", "username": BOT_USERNAME,
                    "can_join_groups": true, "can_read_all_group_messages": false,
                    "supports_inline_queries": false, "has_main_web_app": false}),
            ),
            true,
        ),
        "setmycommands" | "deletewebhook" | "setwebhook" | "sendchataction" => {
            (ok(json!(true)), true)
        }
        "getwebhookinfo" => (
            ok(
                json!({"url": "", "has_custom_certificate": false, "pending_update_count": g.updates.len()}),
            ),
            true,
        ),
        "sendmessagedraft" => {
            if g.no_drafts {
                return (err(404, "Not Found: method not found", None), false);
            }
            match check(text) {
                Ok(()) => (ok(json!(true)), true),
                Err(r) => (*r, false),
            }
        }
        "sendmessage" | "senddocument" => {
            if method == "sendmessage"
                && let Err(r) = check(text)
            {
                return (*r, false);
            }
            g.next_message += 1;
            let id = g.next_message;
            let chat = if method == "senddocument" {
                raw_field(p, "chat_id").unwrap_or(chat)
            } else {
                chat
            };
            g.texts.insert(
                (chat, id),
                visible_text(text).unwrap_or_else(|_| text.to_string()),
            );
            g.order.entry(chat).or_default().push(id);
            if let Some(m) = p.get("reply_markup").filter(|m| !m.is_null()) {
                g.markups.insert((chat, id), m.clone());
            }
            (ok(bot_message(chat, id, text)), true)
        }
        "editmessagetext" => {
            let id = p.get("message_id").and_then(Value::as_i64).unwrap_or(0);
            if let Err(r) = check(text) {
                return (*r, false);
            }
            let new = visible_text(text).unwrap_or_else(|_| text.to_string());
            match g.texts.get(&(chat, id)) {
                None => (
                    err(400, "Bad Request: message to edit not found", None),
                    false,
                ),
                Some(old) if *old == new && !(html && text.contains('<')) => (
                    err(
                        400,
                        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
                        None,
                    ),
                    false,
                ),
                Some(_) => {
                    g.texts.insert((chat, id), new);
                    set_markup(g, chat, id, p);
                    (ok(bot_message(chat, id, text)), true)
                }
            }
        }
        "editmessagereplymarkup" => {
            let id = p.get("message_id").and_then(Value::as_i64).unwrap_or(0);
            match g.texts.get(&(chat, id)).cloned() {
                None => (
                    err(400, "Bad Request: message to edit not found", None),
                    false,
                ),
                Some(text) => {
                    set_markup(g, chat, id, p);
                    (ok(bot_message(chat, id, &text)), true)
                }
            }
        }
        "answercallbackquery" => {
            if p.get("callback_query_id").and_then(Value::as_str).is_none() {
                return (
                    err(
                        400,
                        "Bad Request: query is too old and response timeout expired or query id is invalid",
                        None,
                    ),
                    false,
                );
            }
            (ok(json!(true)), true)
        }
        _ => (err(404, "Not Found: method not found", None), false),
    }
}

/// A message the bot sent, as the Bot API returns it.
pub(super) fn bot_message(chat: i64, id: i64, text: &str) -> Value {
    let chat_obj = if chat < 0 {
        json!({"id": chat, "type": "supergroup", "title": format!("Group{chat}")})
    } else {
        json!({"id": chat, "type": "private", "first_name": format!("User{chat}")})
    };
    json!({"message_id": id, "from": {"id": BOT_ID, "is_bot": true, "first_name": "Acme Support", "username": BOT_USERNAME},
        "chat": chat_obj, "date": chrono::Utc::now().timestamp(), "text": text})
}

/// An edit's `reply_markup`: the new keyboard, or none (an edit without one removes it).
fn set_markup(g: &mut Inner, chat: i64, id: i64, p: &Value) {
    match p.get("reply_markup").filter(|m| !m.is_null()) {
        Some(m) => g.markups.insert((chat, id), m.clone()),
        None => g.markups.remove(&(chat, id)),
    };
}

fn raw_field(p: &Value, name: &str) -> Option<i64> {
    let raw = p.get("raw")?.as_str()?;
    let i = raw.find(&format!("name=\"{name}\""))?;
    raw[i..]
        .split("\r\n\r\n")
        .nth(1)?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The fields of a multipart body (teloxide sends `setWebhook` and `sendDocument` so) as JSON
/// parameters: text fields by name (JSON-looking values parsed), and the whole body as `raw`.
pub(super) fn multipart_params(raw: &str) -> Value {
    let mut params = serde_json::Map::new();
    for part in raw.split("\r\n--") {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            continue;
        };
        if head.contains("filename=") {
            continue;
        }
        let value = value.trim_end_matches("\r\n");
        let parsed = if value.starts_with('[') || value.starts_with('{') {
            serde_json::from_str(value).unwrap_or_else(|_| json!(value))
        } else {
            json!(value)
        };
        params.insert(name.to_string(), parsed);
    }
    params.insert("raw".into(), json!(raw));
    Value::Object(params)
}
