//! A WebSocket connection's queue of messages produced by other peers' requests (relayed offers
//! and answers): many producers, one consumer (the connection's task), bounded.
//!
//! Why not `tokio::sync::mpsc`: its channel preallocates a 32-slot block plus cache-padded
//! state, about 1.2 KiB per connection even when idle, and nearly every tracker connection is
//! idle nearly all the time. This queue is one small allocation and a `VecDeque` that allocates
//! only when something is queued.
//!
//! Invariants: at most `capacity` messages wait; once closed, pushes fail and the consumer gets
//! `None` at once (relays queued for a connection being closed are moot).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushError {
    Full,
    Closed,
}

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<String>>,
    ready: Notify,
    closed: AtomicBool,
    capacity: usize,
}

impl Outbox {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            queue: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            closed: AtomicBool::new(false),
            capacity: capacity.max(1),
        })
    }

    pub fn push(&self, message: String) -> Result<(), PushError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(PushError::Closed);
        }
        {
            let mut queue = self.lock();
            if queue.len() >= self.capacity {
                return Err(PushError::Full);
            }
            queue.push_back(message);
        }
        // One consumer: `notify_one` stores a permit if it is not waiting yet, so no wake-up is
        // lost between its emptiness check and its wait.
        self.ready.notify_one();
        Ok(())
    }

    /// Ends the queue: the consumer's [`Outbox::recv`] returns `None`.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.ready.notify_one();
    }

    /// The next message; `None` once closed. Cancel-safe: a message is only taken in the poll
    /// that returns it.
    pub async fn recv(&self) -> Option<String> {
        loop {
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            if let Some(message) = self.lock().pop_front() {
                return Some(message);
            }
            self.ready.notified().await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<String>> {
        // Push and pop cannot leave the deque inconsistent: keep going after a poison.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next message if one is waiting (`None` also once closed): lets the consumer write
    /// everything queued in one go.
    pub fn try_recv(&self) -> Option<String> {
        if self.closed.load(Ordering::Acquire) {
            return None;
        }
        self.lock().pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bounded_fifo_that_closes() {
        let outbox = Outbox::new(2);
        outbox.push("a".into()).unwrap();
        outbox.push("b".into()).unwrap();
        assert_eq!(outbox.push("c".into()), Err(PushError::Full));
        assert_eq!(outbox.recv().await.as_deref(), Some("a"));
        assert_eq!(outbox.recv().await.as_deref(), Some("b"));

        let consumer = {
            let outbox = outbox.clone();
            tokio::spawn(async move { outbox.recv().await })
        };
        tokio::task::yield_now().await;
        outbox.push("d".into()).unwrap();
        assert_eq!(consumer.await.unwrap().as_deref(), Some("d"));

        outbox.close();
        assert_eq!(outbox.recv().await, None);
        assert_eq!(outbox.push("e".into()), Err(PushError::Closed));
    }
}
