//! A fake Bot API server on 127.0.0.1 for tests and benchmarks: getMe, getUpdates (long poll),
//! sendMessage, editMessageText, editMessageReplyMarkup, answerCallbackQuery, sendMessageDraft,
//! sendChatAction, setMyCommands, deleteWebhook, setWebhook, getWebhookInfo, sendDocument. It
//! keeps the inline keyboards of the bot's messages and makes updates of every kind the bot
//! reads (messages, media, edits, button presses, membership changes, channel posts). Method names are case-insensitive (teloxide sends
//! `SendMessage`). It records every call with a timestamp, checks HTML the way Telegram does
//! (balanced known tags, length after parsing), answers "message is not modified" for edits
//! that change nothing, and can be scripted to fail the next call of a method (429 with
//! `retry_after`, 5xx, "can't parse entities", 403 "bot was blocked", 409 conflict), every
//! call of a method until told to recover (an outage), or every call to a chat that blocked
//! the bot.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

mod html;
mod methods;
pub use html::visible_text;
use methods::{answer, bot_message, err, failure, ok};

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
    /// Methods failing on every call until [`FakeBotApi::recover`] (an outage).
    outages: HashMap<String, Failure>,
    /// (chat, message id) -> current text of messages the bot sent.
    texts: HashMap<(i64, i64), String>,
    /// Bot message ids per chat in send order.
    order: HashMap<i64, Vec<i64>>,
    /// (chat, message id) -> the inline keyboard under a message the bot sent.
    markups: HashMap<(i64, i64), Value>,
    no_drafts: bool,
    /// Chats whose user blocked the bot: every call to them gets a 403.
    blocked: std::collections::HashSet<i64>,
    /// Methods whose answers wait (recorded, not yet answered) until [`FakeBotApi::release`].
    held: std::collections::HashSet<String>,
}

struct FakeState {
    token: String,
    inner: Mutex<Inner>,
    changed: Notify,
    updates_added: Notify,
    released: Notify,
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
            released: Notify::new(),
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

    /// Queue an update of `kind` (`edited_message`, `callback_query`, `my_chat_member`,
    /// `channel_post`, ...) holding `value`; returns its update id.
    pub fn push_update(&self, kind: &str, value: Value) -> i64 {
        let id = {
            let mut g = self.lock();
            let id = g.next_update;
            g.next_update += 1;
            g.updates.push_back(json!({"update_id": id, kind: value}));
            id
        };
        self.state.updates_added.notify_waiters();
        id
    }

    /// Queue a press by `user` of the button with `data` under the bot's message `message_id`
    /// in `chat`; returns the update id. The callback query's id is `cb<update id>`.
    pub fn push_callback(&self, chat: i64, user: i64, message_id: i64, data: &str) -> i64 {
        let text = self
            .lock()
            .texts
            .get(&(chat, message_id))
            .cloned()
            .unwrap_or_default();
        let next = self.lock().next_update;
        let query = json!({
            "id": format!("cb{next}"),
            "from": {"id": user, "is_bot": false, "first_name": format!("User{user}")},
            "message": bot_message(chat, message_id, &text),
            "chat_instance": format!("ci{chat}"),
            "data": data,
        });
        self.push_update("callback_query", query)
    }

    /// The buttons under the bot's message `message_id` in `chat`: (label, callback data), row
    /// after row.
    pub fn buttons(&self, chat: i64, message_id: i64) -> Vec<(String, String)> {
        let g = self.lock();
        let Some(m) = g.markups.get(&(chat, message_id)) else {
            return Vec::new();
        };
        m["inline_keyboard"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|row| row.as_array().cloned().unwrap_or_default())
            .map(|b| {
                (
                    b["text"].as_str().unwrap_or("").to_string(),
                    b["callback_data"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// A photo message (with `caption` when given) from `user` in a private chat with them.
    pub fn photo(&self, user: i64, caption: Option<&str>) -> Value {
        let mut m = self.message(user, user, "");
        let obj = m.as_object_mut().expect("a message object");
        obj.remove("text");
        obj.insert(
            "photo".into(),
            json!([{"file_id": "ph1", "file_unique_id": "u1", "width": 640, "height": 480, "file_size": 1000}]),
        );
        if let Some(c) = caption {
            obj.insert("caption".into(), json!(c));
        }
        m
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

    /// Fail every call of `method` (case-insensitive) with `f` from now until
    /// [`FakeBotApi::recover`]: an outage longer than any number of retries.
    pub fn fail_all(&self, method: &str, f: Failure) {
        self.lock().outages.insert(method.to_lowercase(), f);
    }

    /// End the outage of `method` started by [`FakeBotApi::fail_all`].
    pub fn recover(&self, method: &str) {
        self.lock().outages.remove(&method.to_lowercase());
    }

    /// Hold the answers to `method` (case-insensitive): each call is recorded (and so seen by
    /// [`FakeBotApi::wait_for`]) and done, but the bot reads the answer only after
    /// [`FakeBotApi::release`], as when Telegram's answer is slow to come back.
    pub fn hold(&self, method: &str) {
        self.lock().held.insert(method.to_lowercase());
    }

    /// Let the held answers to `method` go, and answer its later calls at once.
    pub fn release(&self, method: &str) {
        self.lock().held.remove(&method.to_lowercase());
        self.state.released.notify_waiters();
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
        methods::multipart_params(&String::from_utf8_lossy(&body))
    };
    if bot.strip_prefix("bot") != Some(st.token.as_str()) {
        return err(401, "Unauthorized", None);
    }
    if method == "getupdates" {
        return get_updates(&st, &params).await;
    }
    let (resp, ok_flag) = {
        let mut g = st.inner.lock().unwrap_or_else(|e| e.into_inner());
        let scripted = g
            .failures
            .get_mut(&method)
            .and_then(|q| q.pop_front())
            .or_else(|| g.outages.get(&method).cloned());
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
            method: method.clone(),
            params,
            at: Instant::now(),
            ok: ok_flag,
        });
        (resp, ok_flag)
    };
    let _ = ok_flag;
    st.changed.notify_waiters();
    loop {
        // Registered before the check, so a release in between is not missed.
        let released = st.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        if !st
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .held
            .contains(&method)
        {
            break;
        }
        released.await;
    }
    resp
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
