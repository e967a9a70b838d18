//! Delivering codes to people. Pluggable: the default writes each message as a JSON
//! file (`to`, `subject`, `body`, `code`) in the outbox folder, where tests and a person
//! trying Carnet read them. A deployment plugs an e-mail or SMS gateway in its place.

use std::path::PathBuf;

use serde::Serialize;

use crate::error::Error;

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

pub trait Sender: Send + Sync {
    fn send(&self, message: &Message) -> Result<(), Error>;
}

pub struct OutboxSender {
    dir: PathBuf,
}

impl OutboxSender {
    pub fn new(dir: PathBuf) -> OutboxSender {
        OutboxSender { dir }
    }
}

impl Sender for OutboxSender {
    fn send(&self, message: &Message) -> Result<(), Error> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::Internal(format!("cannot create the outbox: {e}")))?;
        // Time-ordered names: `ls` shows the newest last.
        let name = format!(
            "{}-{}.json",
            crate::clock::system_now_micros(),
            super::b64url(&super::random_bytes::<6>()?)
        );
        let text = serde_json::to_vec_pretty(message).map_err(|_| Error::Internal("cannot encode a message".into()))?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).map_err(|e| Error::Internal(format!("cannot write to the outbox: {e}")))?;
        // Readers never see a half-written file.
        std::fs::rename(&tmp, self.dir.join(name))
            .map_err(|e| Error::Internal(format!("cannot write to the outbox: {e}")))?;
        Ok(())
    }
}
