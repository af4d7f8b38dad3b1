//! Pacing of every outgoing call: a global rate, a minimum interval per chat (slower in groups,
//! slower still for a chat whose edits drew a 429), and a shared pause after a 429 that every
//! sender waits out, not just the one that got it. Slots are reserved under a lock and then
//! slept for, so concurrent senders queue fairly instead of racing.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug)]
struct State {
    next_global: Instant,
    paused_until: Instant,
    chats: HashMap<i64, ChatPace>,
}

#[derive(Debug, Clone, Copy)]
struct ChatPace {
    next: Instant,
    /// Multiplier on the chat's interval, raised after a 429 and eased back on success.
    slow: u32,
}

/// Shared pacing state of one bot.
#[derive(Debug)]
pub struct Pacer {
    global_interval: Duration,
    state: Mutex<State>,
}

impl Pacer {
    /// Pace all calls to at most `per_second` overall.
    pub fn new(per_second: f64) -> Self {
        let now = Instant::now();
        Self {
            global_interval: Duration::from_secs_f64(1.0 / per_second.max(0.001)),
            state: Mutex::new(State {
                next_global: now,
                paused_until: now,
                chats: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait for this call's turn: `chat` with its `interval` (None = not paced per chat, e.g.
    /// chat actions and getUpdates).
    pub async fn wait_turn(&self, chat: Option<(i64, Duration)>) {
        loop {
            let slot = {
                let mut st = self.lock();
                let now = Instant::now();
                let mut slot = now.max(st.next_global).max(st.paused_until);
                if let Some((id, interval)) = chat {
                    let pace = st
                        .chats
                        .entry(id)
                        .or_insert(ChatPace { next: now, slow: 1 });
                    slot = slot.max(pace.next);
                    pace.next = slot + interval * pace.slow;
                }
                st.next_global = slot + self.global_interval;
                slot
            };
            tokio::time::sleep_until(slot).await;
            // A 429 that arrived while we slept applies to us too.
            if self.lock().paused_until <= Instant::now() {
                return;
            }
        }
    }

    /// Everyone waits `d` (a 429's `retry_after`).
    pub fn pause_all(&self, d: Duration) {
        let mut st = self.lock();
        let until = Instant::now() + d;
        if until > st.paused_until {
            st.paused_until = until;
        }
    }

    /// Slow this chat down (its edits drew a 429): doubles its interval, up to 8x.
    pub fn slow_chat(&self, chat: i64) {
        let mut st = self.lock();
        let now = Instant::now();
        let pace = st
            .chats
            .entry(chat)
            .or_insert(ChatPace { next: now, slow: 1 });
        pace.slow = (pace.slow * 2).min(8);
    }

    /// Current interval multiplier of a chat (1 = normal).
    pub fn chat_slowdown(&self, chat: i64) -> u32 {
        self.lock().chats.get(&chat).map_or(1, |p| p.slow)
    }

    /// When the shared pause ends (now or earlier = no pause).
    pub fn paused_until(&self) -> Instant {
        self.lock().paused_until
    }

    /// Forget idle chats so the map does not grow forever.
    pub fn forget_idle(&self) {
        let mut st = self.lock();
        let now = Instant::now();
        st.chats
            .retain(|_, p| p.next + Duration::from_secs(600) > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn per_chat_interval_is_kept() {
        let p = Pacer::new(1000.0);
        let t0 = Instant::now();
        let iv = Duration::from_millis(1000);
        p.wait_turn(Some((1, iv))).await;
        p.wait_turn(Some((1, iv))).await;
        p.wait_turn(Some((1, iv))).await;
        assert!(t0.elapsed() >= Duration::from_millis(2000));
        // Another chat is not held back by chat 1.
        let t1 = Instant::now();
        p.wait_turn(Some((2, iv))).await;
        assert!(t1.elapsed() < Duration::from_millis(10));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_applies_to_every_sender() {
        let p = Pacer::new(1000.0);
        p.pause_all(Duration::from_secs(3));
        let t0 = Instant::now();
        p.wait_turn(Some((7, Duration::ZERO))).await;
        p.wait_turn(None).await;
        assert!(t0.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn slowed_chat_waits_longer() {
        let p = Pacer::new(1000.0);
        p.slow_chat(5);
        assert_eq!(p.chat_slowdown(5), 2);
        let iv = Duration::from_millis(100);
        let t0 = Instant::now();
        p.wait_turn(Some((5, iv))).await;
        p.wait_turn(Some((5, iv))).await;
        assert!(t0.elapsed() >= Duration::from_millis(200));
    }
}
