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
    /// Connected right now (see [`Bus::link`]).
    link: tokio::sync::watch::Receiver<bool>,
}

/// How often the client pings the server when it hears nothing from it. A
/// connection whose packets are silently dropped (a partition, a dead
/// route) is declared dead after three unanswered pings, and the client
/// reconnects on a fresh connection, instead of waiting for the old one's
/// TCP retransmissions: those back off exponentially, so after a
/// 30-second partition the old connection resumed only about 25 s after
/// the heal (the client's default interval is 60 s).
const PING_INTERVAL: Duration = Duration::from_secs(2);

/// How long one connection attempt may take (a SYN dropped by a partition
/// is retried by a fresh attempt soon after instead).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The longest pause between two reconnection attempts (the client's
/// default grows to 4 s): a healed host or a restarted server is reached
/// again within about a second.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The pause before reconnection attempt `attempts` (1-based): none before
/// the first, then doubling from 2 ms up to [`MAX_RECONNECT_DELAY`].
fn reconnect_delay(attempts: usize) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    let exp = u32::try_from(attempts - 1).unwrap_or(u32::MAX).min(20);
    Duration::from_millis(2u64.saturating_pow(exp)).min(MAX_RECONNECT_DELAY)
}

impl NatsBus {
    /// Connect to `url` (e.g. `nats://127.0.0.1:4222`); the client reconnects
    /// by itself. The connection's ups and downs go to the process's metrics.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with_metrics(url, stratus_metrics::Metrics::process()).await
    }

    /// As [`NatsBus::connect`], recording reconnects into `metrics` (a
    /// broker restart or a cut shows as `stratus_nats_reconnects_total`).
    pub async fn connect_with_metrics(url: &str, metrics: stratus_metrics::Metrics) -> Result<Self, BusError> {
        // The first `Connected` is the initial connection; any later one is a reconnect.
        let was_connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (link_tx, link) = tokio::sync::watch::channel(false);
        let link_tx = Arc::new(link_tx);
        let link_now = link_tx.clone();
        let client = async_nats::ConnectOptions::new()
            .event_callback(move |event| {
                let (metrics, was_connected, link_tx) = (metrics.clone(), was_connected.clone(), link_tx.clone());
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            link_tx.send_replace(true);
                            let again = was_connected.swap(true, std::sync::atomic::Ordering::SeqCst);
                            if again {
                                tracing::info!("NATS connection restored");
                            }
                            metrics.nats_connected(again);
                        }
                        async_nats::Event::Disconnected => {
                            link_tx.send_replace(false);
                            tracing::warn!("NATS connection lost; reconnecting");
                            metrics.nats_disconnected();
                        }
                        _ => {}
                    }
                }
            })
            .retry_on_initial_connect()
            .connection_timeout(CONNECT_TIMEOUT)
            .ping_interval(PING_INTERVAL)
            .reconnect_delay_callback(reconnect_delay)
            .connect(url)
            .await
            .map_err(|e| BusError::Unavailable(BusDown::Connect { url: url.to_string(), reason: e.to_string() }))?;
        // Connected once `connect` returns, whether or not the callback ran yet.
        if client.connection_state() == async_nats::connection::State::Connected {
            link_now.send_replace(true);
        }
        Ok(Self { client, subs: Arc::default(), link })
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

    fn link(&self) -> tokio::sync::watch::Receiver<bool> {
        self.link.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnection_attempts_are_at_most_a_second_apart() {
        assert_eq!(reconnect_delay(1), Duration::ZERO);
        assert_eq!(reconnect_delay(2), Duration::from_millis(2));
        assert_eq!(reconnect_delay(5), Duration::from_millis(16));
        assert_eq!(reconnect_delay(11), MAX_RECONNECT_DELAY);
        assert_eq!(reconnect_delay(usize::MAX), MAX_RECONNECT_DELAY);
    }
}
