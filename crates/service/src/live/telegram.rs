//! Broadcasts through the Bot API: send into the configured supergroup and forum topic, pin.

use teloxide::{
    Bot,
    payloads::SendMessageSetters,
    prelude::Requester,
    types::{ChatId, MessageId, ThreadId},
};

use crate::bot::outbox::redact;
use tgwatch_core::config::Secret;

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("message id {0} is out of range")]
    BadMessageId(i64),
    /// The Bot API's answer or a network error, with the token cut out.
    #[error("the Bot API refused: {0}")]
    Telegram(String),
}

/// What was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sent {
    pub message_id: i64,
    pub thread_id: Option<i64>,
}

/// The bot as broadcasts use it: one chat, a default forum topic.
pub struct Announcer {
    bot: Bot,
    token: Secret,
    pub chat_id: i64,
    pub default_thread_id: Option<i64>,
}

impl Announcer {
    pub fn new(
        token: &Secret,
        api_url: reqwest::Url,
        chat_id: i64,
        default_thread_id: Option<i64>,
    ) -> Announcer {
        Announcer {
            bot: Bot::new(token.expose()).set_api_url(api_url),
            token: token.clone(),
            chat_id,
            default_thread_id,
        }
    }

    fn failed(&self, error: teloxide::RequestError) -> AnnounceError {
        AnnounceError::Telegram(redact(&error.to_string(), self.token.expose()))
    }

    /// Sends `text` into `thread_id` (or the default topic; none: the chat's main thread).
    pub async fn send(&self, text: &str, thread_id: Option<i64>) -> Result<Sent, AnnounceError> {
        let thread_id = thread_id.or(self.default_thread_id);
        let request = self.bot.send_message(ChatId(self.chat_id), text);
        let message = match thread_id {
            Some(thread) => {
                let thread =
                    i32::try_from(thread).map_err(|_| AnnounceError::BadMessageId(thread))?;
                request.message_thread_id(ThreadId(MessageId(thread))).await
            }
            None => request.await,
        }
        .map_err(|error| self.failed(error))?;
        Ok(Sent {
            message_id: i64::from(message.id.0),
            thread_id,
        })
    }

    /// Pins a message of the chat (the Bot API pins by message id; a topic's message is pinned
    /// in its topic).
    pub async fn pin(&self, message_id: i64) -> Result<(), AnnounceError> {
        let id = i32::try_from(message_id).map_err(|_| AnnounceError::BadMessageId(message_id))?;
        self.bot
            .pin_chat_message(ChatId(self.chat_id), MessageId(id))
            .await
            .map_err(|error| self.failed(error))?;
        Ok(())
    }
}
