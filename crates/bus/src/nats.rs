//! The NATS implementation of [`Bus`], used when roles run as separate
//! processes. NATS core gives exactly the semantics the trait promises:
//! subject fan-out, request/reply through inboxes, and an immediate
//! "no responders" status when nobody subscribes to a request's subject.

use crate::{Bus, BusDown, BusError, Message, Subscription};
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A bus over a NATS connection.
#[derive(Clone)]
pub struct NatsBus {
    client: async_nats::Client,
    subs: Arc<Mutex<HashMap<String, Vec<JoinHandle<()>>>>>,
}

impl NatsBus {
    /// Connect to `url` (e.g. `nats://127.0.0.1:4222`); the client reconnects by itself.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(|e| BusError::Unavailable(BusDown::Connect { url: url.to_string(), reason: e.to_string() }))?;
        Ok(Self { client, subs: Arc::default() })
    }
}

/// Hand the messages of `sub` to its [`Subscription`] until either ends.
/// The subscription is dropped at NATS as soon as its receiver is dropped,
/// not at the next message: a member that leaves a queue group takes no
/// further share of the group's messages (one would be lost with it).
async fn forward(mut sub: async_nats::Subscriber, tx: mpsc::UnboundedSender<Message>) {
    loop {
        let m = tokio::select! {
            m = sub.next() => m,
            _ = tx.closed() => break,
        };
        let Some(m) = m else { break };
        let msg =
            Message { subject: m.subject.to_string(), payload: m.payload, reply_to: m.reply.map(|r| r.to_string()) };
        if tx.send(msg).is_err() {
            break;
        }
    }
    let _ = sub.unsubscribe().await;
}

fn unavailable(e: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(BusDown::Transport(e.to_string()))
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.client.publish(subject.to_string(), payload).await.map_err(unavailable)
    }

    async fn publish_with_reply(&self, subject: &str, reply_to: &str, payload: Bytes) -> Result<(), BusError> {
        self.client.publish_with_reply(subject.to_string(), reply_to.to_string(), payload).await.map_err(unavailable)
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        let sub = self.client.subscribe(subject.to_string()).await.map_err(unavailable)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward(sub, tx));
        if let Ok(mut s) = self.subs.lock() {
            let list = s.entry(subject.to_string()).or_default();
            list.retain(|t| !t.is_finished());
            list.push(task);
        }
        Ok(Subscription::from_receiver(rx))
    }

    async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscription, BusError> {
        let sub = self.client.queue_subscribe(subject.to_string(), group.to_string()).await.map_err(unavailable)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward(sub, tx));
        if let Ok(mut s) = self.subs.lock() {
            let list = s.entry(subject.to_string()).or_default();
            list.retain(|t| !t.is_finished());
            list.push(task);
        }
        Ok(Subscription::from_receiver(rx))
    }

    async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<Bytes, BusError> {
        let req = async_nats::Request::new().payload(payload).timeout(Some(timeout));
        match self.client.send_request(subject.to_string(), req).await {
            Ok(m) => Ok(m.payload),
            Err(e) => match e.kind() {
                async_nats::RequestErrorKind::NoResponders => Err(BusError::NoResponders(subject.to_string())),
                async_nats::RequestErrorKind::TimedOut => Err(BusError::Timeout(subject.to_string(), timeout)),
                _ => Err(unavailable(e)),
            },
        }
    }

    async fn unsubscribe_all(&self, subject: &str) -> Result<(), BusError> {
        if let Ok(mut s) = self.subs.lock() {
            for t in s.remove(subject).unwrap_or_default() {
                t.abort();
            }
        }
        Ok(())
    }
}
