//! The message bus. Messages are *hints* that wake work up; the database stays
//! the source of truth, so a lost message costs latency, never correctness.
//!
//! The trait mirrors NATS core semantics (subjects, queue-less fan-out,
//! request/reply with inbox subjects and "no responders") so the in-process
//! implementation used by `stratus up` and the NATS one behave alike.

mod nats;

pub use nats::NatsBus;

use async_trait::async_trait;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// A message as delivered to a subscriber.
#[derive(Clone, Debug)]
pub struct Message {
    /// Subject it was published on.
    pub subject: String,
    /// Opaque payload (JSON in practice).
    pub payload: Bytes,
    /// Where a reply should be published, for requests.
    pub reply_to: Option<String>,
}

/// Errors of bus operations.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// Nobody is subscribed to the subject: positive evidence that the peer is gone.
    #[error("no responders on subject {0}")]
    NoResponders(String),
    /// The request got no reply in time.
    #[error("request on {0} timed out after {1:?}")]
    Timeout(String, Duration),
    /// The bus connection is closed or broken.
    #[error("bus unavailable: {0}")]
    Unavailable(BusDown),
    /// A reply arrived but is not what the request expects.
    #[error("bad reply on {subject}: {reason}")]
    BadReply {
        /// The subject of the request.
        subject: String,
        /// Why it does not decode.
        reason: String,
    },
}

/// Why the bus cannot carry messages, for [`BusError::Unavailable`]: each
/// cause its own variant, so callers (and logs) tell a shutdown from a
/// broken connection.
#[derive(Debug, thiserror::Error)]
pub enum BusDown {
    /// The connection to the NATS server could not be made at start-up.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL.
        url: String,
        /// The client's error.
        reason: String,
    },
    /// The transport failed (the NATS client's own error).
    #[error("{0}")]
    Transport(String),
    /// A subscription ended before a reply came: the bus is shutting down.
    #[error("subscription closed")]
    SubscriptionClosed,
    /// The in-process bus's subscription table was poisoned by a panicking holder.
    #[error("bus lock poisoned")]
    Poisoned,
}

/// A stream of messages on one subject. Dropping it ends the subscription
/// at once (a queue-group member leaves the group), on every bus.
pub struct Subscription {
    rx: mpsc::UnboundedReceiver<Message>,
}

impl Subscription {
    /// Wrap a receiver (used by implementations).
    pub fn from_receiver(rx: mpsc::UnboundedReceiver<Message>) -> Self {
        Self { rx }
    }

    /// The next message, or `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Message> {
        self.rx.recv().await
    }
}

/// What every bus offers. Object safe so roles hold an `Arc<dyn Bus>`.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Fire-and-forget publish.
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError>;
    /// Publish with a reply subject (used by `request`).
    async fn publish_with_reply(&self, subject: &str, reply_to: &str, payload: Bytes) -> Result<(), BusError>;
    /// Receive every message published on `subject` from now on.
    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError>;
    /// Share the messages of `subject` with the other members of `group`:
    /// each message goes to one member (NATS queue groups). Several
    /// controllers serve the agents this way, so a join or a lease renewal
    /// is handled once, not once per controller.
    async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscription, BusError>;
    /// Send a request and wait for the first reply. Fails fast with
    /// `NoResponders` when nobody listens, and with `Timeout` after `timeout`.
    async fn request(&self, subject: &str, payload: Bytes, timeout: Duration) -> Result<Bytes, BusError> {
        let inbox = format!("_INBOX.{}", uuid::Uuid::new_v4().simple());
        let mut sub = self.subscribe(&inbox).await?;
        self.publish_with_reply(subject, &inbox, payload).await?;
        let reply = tokio::time::timeout(timeout, sub.next()).await;
        let _ = self.unsubscribe_all(&inbox).await;
        match reply {
            Ok(Some(m)) => Ok(m.payload),
            Ok(None) => Err(BusError::Unavailable(BusDown::SubscriptionClosed)),
            Err(_) => Err(BusError::Timeout(subject.to_string(), timeout)),
        }
    }
    /// Drop every subscription on `subject` (inboxes are cleaned this way).
    async fn unsubscribe_all(&self, subject: &str) -> Result<(), BusError>;
    /// Whether this process is connected to the bus right now, and each
    /// change of it. The leader controller holds the hosts' leases in memory
    /// from the renewals it receives: while it is cut off from the bus the
    /// silence is its own, not the hosts', so it must not convict them. The
    /// in-process bus is always connected.
    fn link(&self) -> tokio::sync::watch::Receiver<bool> {
        tokio::sync::watch::channel(true).1
    }
}

/// Reply to a request message; a message without `reply_to` is ignored.
pub async fn reply(bus: &dyn Bus, msg: &Message, payload: Bytes) -> Result<(), BusError> {
    match &msg.reply_to {
        Some(to) => bus.publish(to, payload).await,
        None => Ok(()),
    }
}

/// The in-process bus of the embedded deployment: exact-subject fan-out over
/// unbounded channels. Subscriptions whose receiver is dropped are pruned.
#[derive(Clone, Default)]
pub struct InProcessBus {
    subs: Arc<Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Message>>>>>,
    /// subject → group → (members, round-robin cursor).
    queues: Arc<Mutex<QueueMap>>,
}

type QueueMap = HashMap<String, HashMap<String, (Vec<mpsc::UnboundedSender<Message>>, usize)>>;

impl InProcessBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    fn deliver(&self, msg: Message) -> Result<(), BusError> {
        let mut delivered = false;
        {
            let mut queues = self.queues.lock().map_err(|_| BusError::Unavailable(BusDown::Poisoned))?;
            if let Some(groups) = queues.get_mut(&msg.subject) {
                for (members, cursor) in groups.values_mut() {
                    members.retain(|tx| !tx.is_closed());
                    if !members.is_empty() {
                        *cursor = (*cursor + 1) % members.len();
                        delivered |= members[*cursor].send(msg.clone()).is_ok();
                    }
                }
                groups.retain(|_, (members, _)| !members.is_empty());
            }
        }
        let mut subs = self.subs.lock().map_err(|_| BusError::Unavailable(BusDown::Poisoned))?;
        if let Some(list) = subs.get_mut(&msg.subject) {
            list.retain(|tx| !tx.is_closed());
            for tx in list.iter() {
                delivered |= tx.send(msg.clone()).is_ok();
            }
            if list.is_empty() {
                subs.remove(&msg.subject);
            }
        }
        if !delivered && msg.reply_to.is_some() {
            return Err(BusError::NoResponders(msg.subject));
        }
        Ok(())
    }
}

#[async_trait]
impl Bus for InProcessBus {
    async fn publish(&self, subject: &str, payload: Bytes) -> Result<(), BusError> {
        self.deliver(Message { subject: subject.to_string(), payload, reply_to: None })
    }

    async fn publish_with_reply(&self, subject: &str, reply_to: &str, payload: Bytes) -> Result<(), BusError> {
        self.deliver(Message { subject: subject.to_string(), payload, reply_to: Some(reply_to.to_string()) })
    }

    async fn subscribe(&self, subject: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.subs
            .lock()
            .map_err(|_| BusError::Unavailable(BusDown::Poisoned))?
            .entry(subject.to_string())
            .or_default()
            .push(tx);
        Ok(Subscription::from_receiver(rx))
    }

    async fn queue_subscribe(&self, subject: &str, group: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.queues
            .lock()
            .map_err(|_| BusError::Unavailable(BusDown::Poisoned))?
            .entry(subject.to_string())
            .or_default()
            .entry(group.to_string())
            .or_default()
            .0
            .push(tx);
        Ok(Subscription::from_receiver(rx))
    }

    async fn unsubscribe_all(&self, subject: &str) -> Result<(), BusError> {
        self.subs.lock().map_err(|_| BusError::Unavailable(BusDown::Poisoned))?.remove(subject);
        self.queues.lock().map_err(|_| BusError::Unavailable(BusDown::Poisoned))?.remove(subject);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NATS queue groups: each message to one member of each group, every
    /// plain subscriber still gets all; a request served only by a queue
    /// group has responders.
    #[tokio::test]
    async fn a_queue_group_shares_the_messages() {
        let bus = InProcessBus::new();
        let mut a = bus.queue_subscribe("s", "g").await.expect("a");
        let mut b = bus.queue_subscribe("s", "g").await.expect("b");
        let mut all = bus.subscribe("s").await.expect("all");
        for i in 0..4u8 {
            bus.publish("s", Bytes::from(vec![i])).await.expect("publish");
        }
        let (mut got_a, mut got_b) = (0, 0);
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), a.next()).await {
            got_a += 1;
        }
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(50), b.next()).await {
            got_b += 1;
        }
        assert_eq!((got_a, got_b), (2, 2), "each message to one member, round robin");
        for _ in 0..4 {
            assert!(all.next().await.is_some());
        }
        drop(all);
        let replier = bus.clone();
        tokio::spawn(async move {
            while let Some(m) = a.next().await {
                let _ = reply(&replier, &m, Bytes::from_static(b"ok")).await;
            }
        });
        drop(b);
        let r = bus.request("s", Bytes::new(), Duration::from_secs(1)).await.expect("served by the group");
        assert_eq!(&r[..], b"ok");
    }

    #[tokio::test]
    async fn request_without_subscriber_reports_no_responders() {
        let bus = InProcessBus::new();
        let err = bus
            .request("agent.h1", Bytes::from_static(b"x"), Duration::from_secs(1))
            .await
            .expect_err("nobody listens");
        assert!(matches!(err, BusError::NoResponders(_)));
    }

    #[tokio::test]
    async fn request_gets_reply_and_times_out_when_ignored() {
        let bus = InProcessBus::new();
        let mut sub = bus.subscribe("echo").await.expect("subscribe");
        let b2 = bus.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                let _ = reply(&b2, &m, m.payload.clone()).await;
            }
        });
        let got = bus.request("echo", Bytes::from_static(b"hi"), Duration::from_secs(1)).await.expect("reply");
        assert_eq!(&got[..], b"hi");

        let _silent = bus.subscribe("silent").await.expect("subscribe");
        let err = bus.request("silent", Bytes::new(), Duration::from_millis(20)).await.expect_err("no reply");
        assert!(matches!(err, BusError::Timeout(..)));
    }

    #[tokio::test]
    async fn dropped_subscriber_means_no_responders() {
        let bus = InProcessBus::new();
        drop(bus.subscribe("gone").await.expect("subscribe"));
        let err = bus.request("gone", Bytes::new(), Duration::from_secs(1)).await.expect_err("gone");
        assert!(matches!(err, BusError::NoResponders(_)));
    }
}
