//! Button presses (`callback_query`). Every press is answered with `answerCallbackQuery`, or
//! Telegram keeps a spinner on the button.

use super::service::{Service, TelegramError};
use std::sync::atomic::Ordering::Relaxed;
use teloxide::types::CallbackQuery;

/// What a press of a button the bot no longer knows gets.
pub const EXPIRED: &str = "This button has expired.";

/// A button press: answered, never acted on when the bot did not make the button.
pub async fn on_press(
    svc: &Service,
    _update_id: i64,
    q: CallbackQuery,
) -> Result<Option<i64>, TelegramError> {
    let s = svc.shared();
    s.metrics.button_presses.fetch_add(1, Relaxed);
    s.metrics.buttons_expired.fetch_add(1, Relaxed);
    if let Err(e) = s.out.answer_callback(&q.id.0, Some(EXPIRED)).await {
        tracing::warn!(error = %e, "could not answer a button press");
    }
    Ok(None)
}
