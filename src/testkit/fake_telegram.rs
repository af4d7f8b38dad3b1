//! A fake Bot API server on 127.0.0.1 for tests and benchmarks: getMe, getUpdates (long poll),
//! sendMessage, editMessageText, sendMessageDraft, sendChatAction, setMyCommands,
//! deleteWebhook, setWebhook, sendDocument. Method names are case-insensitive (teloxide sends
//! `SendMessage`). It records every call with a timestamp, checks HTML the way Telegram does
//! (balanced known tags, length after parsing), answers "message is not modified" for edits
//! that change nothing, and can be scripted to fail the next call of a method (429 with
//! `retry_after`, 5xx, "can't parse entities", 403 "bot was blocked", 409 conflict) or every
//! call to a chat that blocked the bot.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

mod html;
pub use html::visible_text;

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    /// Method name, lowercased (`sendmessage`).
    pub method: String,
    /// JSON parameters (multipart bodies: `{"raw": body}`).
    pub params: Value,
    /// When it arrived.
    pub at: Instant,
    /// Whether the fake answered `ok: true`.
    pub ok: bool,
}

impl Call {
    /// `chat_id` parameter.
    pub fn chat(&self) -> Option<i64> {
        self.params
            .get("chat_id")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
    }
    /// `text` parameter.
    pub fn text(&self) -> &str {
        self.params
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
    /// Sent with `parse_mode: HTML`.
    pub fn is_html(&self) -> bool {
        self.params.get("parse_mode").and_then(Value::as_str) == Some("HTML")
    }
}

/// A scripted failure for the next call of a method.
#[derive(Debug, Clone)]
pub enum Failure {
    /// 429 with `retry_after` seconds.
    RetryAfter(u64),
    /// This HTTP status (e.g. 500, 502).
    Status(u16),
    /// 400 "can't parse entities".
    ParseEntities,
    /// 403 "bot was blocked by the user".
    Blocked,
    /// 409 "terminated by other getUpdates request" (another process polls the token).
    Conflict,
}

/// 403 as Telegram sends it for a chat whose user blocked the bot.
const BLOCKED: &str = "Forbidden: bot was blocked by the user";

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    updates: VecDeque<Value>,
    next_update: i64,
    next_message: i64,
    failures: HashMap<String, VecDeque<Failure>>,
    /// (chat, message id) -> current text of messages the bot sent.
    texts: HashMap<(i64, i64), String>,
    /// Bot message ids per chat in send order.
    order: HashMap<i64, Vec<i64>>,
    no_drafts: bool,
    /// Chats whose user blocked the bot: every call to them gets a 403.
    blocked: std::collections::HashSet<i64>,
}

struct FakeState {
    token: String,
    inner: Mutex<Inner>,
    changed: Notify,
    updates_added: Notify,
}

/// The running fake server. Dropping it stops the server.
pub struct FakeBotApi {
    state: Arc<FakeState>,
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The fake bot's user id.
pub const BOT_ID: i64 = 4242;
/// The fake bot's username.
pub const BOT_USERNAME: &str = "acme_support_bot";

impl FakeBotApi {
    /// Start on 127.0.0.1 with a random port; requests must use `token`.
    pub async fn start(token: &str) -> std::io::Result<Self> {
        Self::serve(tokio::net::TcpListener::bind("127.0.0.1:0").await?, token)
    }

    /// Start on `addr` (a Bot API that comes up late, where a client already tries).
    pub async fn start_at(addr: &str, token: &str) -> std::io::Result<Self> {
        Self::serve(tokio::net::TcpListener::bind(addr).await?, token)
    }

    fn serve(listener: tokio::net::TcpListener, token: &str) -> std::io::Result<Self> {
        let state = Arc::new(FakeState {
            token: token.to_string(),
            inner: Mutex::new(Inner {
                next_update: 1,
                next_message: 1000,
                ..Default::default()
            }),
            changed: Notify::new(),
            updates_added: Notify::new(),
        });
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .route("/{bot}/{method}", axum::routing::post(handle).get(handle))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { state, addr, task })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.state.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Base URL (`http://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Make `sendMessageDraft` unknown (an older Bot API).
    pub fn disable_drafts(&self) {
        self.lock().no_drafts = true;
    }

    /// The user of `chat` blocks the bot: every later call to that chat gets a 403.
    pub fn block_chat(&self, chat: i64) {
        self.lock().blocked.insert(chat);
    }

    /// Queue an update with this message; returns its update id.
    pub fn push_message(&self, message: Value) -> i64 {
        let id = {
            let mut g = self.lock();
            let id = g.next_update;
            g.next_update += 1;
            g.updates
                .push_back(json!({"update_id": id, "message": message}));
            id
        };
        self.state.updates_added.notify_waiters();
        id
    }

    /// Queue a raw update as given (duplicates, odd kinds).
    pub fn push_raw(&self, update: Value) {
        {
            let mut g = self.lock();
            if let Some(id) = update.get("update_id").and_then(Value::as_i64) {
                g.next_update = g.next_update.max(id + 1);
            }
            g.updates.push_back(update);
        }
        self.state.updates_added.notify_waiters();
    }

    /// A text message from `user` in chat `chat` (private when `chat == user`, else a group).
    pub fn message(&self, chat: i64, user: i64, text: &str) -> Value {
        let message_id = {
            let mut g = self.lock();
            g.next_message += 1;
            g.next_message
        };
        let chat_obj = if chat == user {
            json!({"id": chat, "type": "private", "first_name": format!("User{user}")})
        } else {
            json!({"id": chat, "type": "supergroup", "title": format!("Group{chat}")})
        };
        json!({
            "message_id": message_id,
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
            "chat": chat_obj,
            "date": chrono::Utc::now().timestamp(),
            "text": text,
        })
    }

    /// Queue a text message from `user` in a private chat with them.
    pub fn push_text(&self, user: i64, text: &str) -> i64 {
        let m = self.message(user, user, text);
        self.push_message(m)
    }

    /// Fail the next call of `method` (case-insensitive) with `f`; several queue up.
    pub fn fail_next(&self, method: &str, f: Failure) {
        self.lock()
            .failures
            .entry(method.to_lowercase())
            .or_default()
            .push_back(f);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Calls of one method (case-insensitive).
    pub fn calls_to(&self, method: &str) -> Vec<Call> {
        let m = method.to_lowercase();
        self.lock()
            .calls
            .iter()
            .filter(|c| c.method == m)
            .cloned()
            .collect()
    }

    /// Current texts of the messages the bot sent to `chat`, in send order (after edits).
    pub fn chat_texts(&self, chat: i64) -> Vec<String> {
        let g = self.lock();
        g.order
            .get(&chat)
            .map(|ids| {
                ids.iter()
                    .filter_map(|id| g.texts.get(&(chat, *id)).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Ids of the messages the bot sent to `chat`, in send order.
    pub fn sent_message_ids(&self, chat: i64) -> Vec<i64> {
        self.lock().order.get(&chat).cloned().unwrap_or_default()
    }

    /// Updates not yet acknowledged by a getUpdates offset.
    pub fn unacknowledged(&self) -> usize {
        self.lock().updates.len()
    }

    /// Wait until `pred` holds for the recorded calls (checked on every call), or `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&[Call]) -> bool,
    ) -> Result<Vec<Call>, Vec<Call>> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            let calls = self.calls();
            if pred(&calls) {
                return Ok(calls);
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let calls = self.calls();
                    return if pred(&calls) { Ok(calls) } else { Err(calls) };
                }
            }
        }
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn err(status: u16, description: &str, retry_after: Option<u64>) -> Response {
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

async fn handle(
    State(st): State<Arc<FakeState>>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let method = method.to_lowercase();
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let params: Value = if is_json {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        json!({"raw": String::from_utf8_lossy(&body)})
    };
    if bot.strip_prefix("bot") != Some(st.token.as_str()) {
        return err(401, "Unauthorized", None);
    }
    if method == "getupdates" {
        return get_updates(&st, &params).await;
    }
    let (resp, ok_flag) = {
        let mut g = st.inner.lock().unwrap_or_else(|e| e.into_inner());
        let scripted = g.failures.get_mut(&method).and_then(|q| q.pop_front());
        let (resp, ok_flag) = match scripted {
            Some(f) => (failure(&f), false),
            None if params
                .get("chat_id")
                .and_then(|v| v.as_i64())
                .is_some_and(|c| g.blocked.contains(&c)) =>
            {
                (err(403, BLOCKED, None), false)
            }
            None => answer(&mut g, &method, &params),
        };
        g.calls.push(Call {
            method,
            params,
            at: Instant::now(),
            ok: ok_flag,
        });
        (resp, ok_flag)
    };
    let _ = ok_flag;
    st.changed.notify_waiters();
    resp
}

/// The reply for a scripted failure.
fn failure(f: &Failure) -> Response {
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

fn answer(g: &mut Inner, method: &str, p: &Value) -> (Response, bool) {
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
                json!({"id": BOT_ID, "is_bot": true, "first_name": "Acme Support", "username": BOT_USERNAME}),
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
            let msg = json!({"message_id": id, "from": {"id": BOT_ID, "is_bot": true, "first_name": "Acme Support"},
                "chat": {"id": chat, "type": if chat < 0 {"supergroup"} else {"private"}}, "date": chrono::Utc::now().timestamp(), "text": text});
            (ok(msg), true)
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
                    (
                        ok(json!({"message_id": id, "chat": {"id": chat}, "text": text})),
                        true,
                    )
                }
            }
        }
        _ => (err(404, "Not Found: method not found", None), false),
    }
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

async fn get_updates(st: &FakeState, p: &Value) -> Response {
    let offset = p.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let timeout = p
        .get("timeout")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(10);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    {
        let mut g = st.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.failures.get_mut("getupdates").and_then(|q| q.pop_front()) {
            g.calls.push(Call {
                method: "getupdates".into(),
                params: p.clone(),
                at: Instant::now(),
                ok: false,
            });
            drop(g);
            st.changed.notify_waiters();
            return failure(&f);
        }
    }
    loop {
        let added = st.updates_added.notified();
        {
            let mut g = st.inner.lock().unwrap_or_else(|e| e.into_inner());
            g.updates
                .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            let ready: Vec<Value> = g.updates.iter().cloned().collect();
            if !ready.is_empty() || tokio::time::Instant::now() >= deadline {
                g.calls.push(Call {
                    method: "getupdates".into(),
                    params: p.clone(),
                    at: Instant::now(),
                    ok: true,
                });
                drop(g);
                st.changed.notify_waiters();
                return ok(Value::Array(ready));
            }
        }
        tokio::select! {
            _ = added => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}
