//! Teaching the graph after the reply, in batches.
//!
//! Sessions queue each message they delivered, tagged or held once its reply
//! is sent, and one background task learns everything queued in a single
//! graph transaction. A session waits for the graph only when the queue is
//! full, and under load one commit covers many messages.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_engine::{Analysis, Outcome};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::gateway::Gateway;

/// Messages waiting to be learned. When the queue is full, sessions wait
/// before their next message, so learning cannot fall behind without bound.
const QUEUE: usize = 1024;

/// Maximum messages learned in one graph transaction.
const BATCH: usize = 256;

/// How long the learner waits for more messages after the first of a batch.
/// Without it, one session sending a message every millisecond costs a graph
/// transaction and a thread hand-off per message. The graph learns each
/// message at most this much later.
const LINGER: Duration = Duration::from_millis(10);

/// A message to learn: its analysis, and what the gateway did with it.
pub type Learning = (Analysis, Outcome);

/// The background task that learns queued messages.
pub struct Learner {
    queue: LearnQueue,
    task: JoinHandle<()>,
}

/// The sending side of a [`Learner`], one clone per session.
#[derive(Clone)]
pub struct LearnQueue(mpsc::Sender<Learning>);

impl Learner {
    /// Starts the task that learns with `gateway`'s current engine.
    pub fn start(gateway: Arc<Gateway>) -> Learner {
        let (sender, receiver) = mpsc::channel(QUEUE);
        Learner {
            queue: LearnQueue(sender),
            task: tokio::spawn(learn(gateway, receiver)),
        }
    }

    pub fn queue(&self) -> LearnQueue {
        self.queue.clone()
    }

    /// Waits until every message queued so far is learned. Every clone of
    /// the queue must be dropped first, or this waits for them.
    pub async fn finish(self) {
        drop(self.queue);
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "graph learner failed");
        }
    }
}

impl LearnQueue {
    /// Queues a message, waiting while the queue is full.
    pub async fn push(&self, learning: Learning) {
        if self.0.send(learning).await.is_err() {
            tracing::warn!("graph learner stopped; message not learned");
        }
    }
}

/// Learns the messages in `queue`, in batches, until every sender is dropped.
async fn learn(gateway: Arc<Gateway>, mut queue: mpsc::Receiver<Learning>) {
    let mut batch = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut batch, BATCH).await > 0 {
        if batch.len() < BATCH {
            tokio::time::sleep(LINGER).await;
            while batch.len() < BATCH {
                let Ok(learning) = queue.try_recv() else {
                    break;
                };
                batch.push(learning);
            }
        }
        let messages = batch.len();
        let queued = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
        let learned = gateway
            .run_analysis(move |engine| {
                let batch: Vec<(&Analysis, Outcome)> = queued
                    .iter()
                    .map(|(analysis, outcome)| (analysis, *outcome))
                    .collect();
                engine.learn_decided(&batch)
            })
            .await;
        match learned {
            Some(Ok(())) => {}
            Some(Err(err)) => tracing::warn!(error = %err, messages, "graph update failed"),
            None => tracing::warn!(messages, "graph update failed"),
        }
    }
}
