//! A dispatcher's lease that waits ([`Store::lease`](crate::Store::lease)). When none of its function's
//! events is due, the lease is parked on the store's thread, and the commit that accepts the function's next
//! event leases that event and hands it over: the dispatcher learns of the event without a second request to
//! the store's thread, and the event is not read back from the database (its accept still holds it).
//!
//! Queue order is kept: a parked lease knows when the oldest event not leased is due (an event waiting for
//! its retry); once that time has come, an accepted event is not handed over ahead of it, and the
//! dispatcher, woken by its own timer, leases in queue order as before.
//!
//! A parked lease takes an event only once its dispatcher waits for one ([`Parked::wait_from_now`]): while
//! the dispatcher is busy (waiting for an instance, say), the events accepted stay in their queue, not
//! leased, and the dispatcher leases them in turn. So at most the one event a dispatcher waits on is
//! leased behind the queue's back, however many are accepted meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::db::Accept;
use crate::{QueuedEvent, StoreError};

/// What [`Store::lease`](crate::Store::lease) answers, and what a parked lease is handed.
#[derive(Debug)]
pub struct Lease {
    /// The oldest due event of the function that was not leased, now leased (it runs, and its outcome is
    /// written, before it is let go).
    pub event: Option<QueuedEvent>,
    /// What to do next.
    pub then: Then,
}

/// After a [`Lease`].
#[derive(Debug)]
pub enum Then {
    /// Another event is due already: lease again at once.
    Again,
    /// None is: wait for an accepted event to be handed over, or until [`Parked::due_ms`].
    Wait(Parked),
}

/// A lease parked on the store's thread until the function's next event is accepted.
#[derive(Debug)]
pub struct Parked {
    due_ms: Option<i64>,
    rx: oneshot::Receiver<Lease>,
    arming: Arc<Mutex<Arming>>,
}

/// Whether a parked lease's dispatcher waits yet, shared by the two sides.
#[derive(Debug, Default)]
struct Arming {
    /// The dispatcher waits: an accepted event is handed over.
    armed: bool,
    /// An event was accepted before that: it was left in its queue.
    skipped: bool,
}

impl Parked {
    /// When the oldest event not leased is due (one waiting for its retry), ms since the epoch: lease
    /// again then ([`Parked::cancel`] first). `None`: the queue holds no other event.
    pub fn due_ms(&self) -> Option<i64> {
        self.due_ms
    }

    /// Says that the dispatcher waits from now on, so that the next accepted event is handed over; `false`
    /// if one was accepted before (it stays in its queue, not leased): lease again rather than wait.
    pub fn wait_from_now(&self) -> bool {
        let mut a = self.arming.lock().unwrap_or_else(PoisonError::into_inner);
        a.armed = true;
        !a.skipped
    }

    /// The lease handed over once the function's next event is accepted. Cancel-safe: dropped and called
    /// again, it loses nothing. An error means the lease was dropped by the store (it stopped): lease
    /// again to learn why.
    pub async fn handed_over(&mut self) -> Result<Lease, StoreError> {
        (&mut self.rx).await.map_err(|_| StoreError::Closed)
    }

    /// Gives the parked lease up (a retry is due, or the dispatcher was told to look again). If an event was
    /// handed over before the store could learn of it, that lease comes back: its event is leased, and the
    /// caller runs it.
    pub fn cancel(mut self) -> Option<Lease> {
        self.rx.close();
        self.rx.try_recv().ok()
    }
}

/// The parked leases, one per function, on the store's thread.
#[derive(Debug, Default)]
pub(crate) struct ParkedLeases(HashMap<String, Slot>);

#[derive(Debug)]
struct Slot {
    tx: oneshot::Sender<Lease>,
    due_ms: Option<i64>,
    arming: Arc<Mutex<Arming>>,
}

impl ParkedLeases {
    /// Parks a lease of `function`, whose oldest event not leased is due at `due_ms` (a parked lease of the
    /// function before it was given up: there is one dispatcher per function).
    pub(crate) fn park(&mut self, function: &str, due_ms: Option<i64>) -> Parked {
        let (tx, rx) = oneshot::channel();
        let arming = Arc::<Mutex<Arming>>::default();
        self.0.insert(
            function.to_owned(),
            Slot {
                tx,
                due_ms,
                arming: arming.clone(),
            },
        );
        Parked { due_ms, rx, arming }
    }

    /// After `accepts` were committed and their callers answered (`seqs`: each one's place in its queue,
    /// `None` if it was refused; an answer goes out first, so the caller's ack does not wait for the
    /// delivery the dispatcher begins at once): the first event accepted for a function whose dispatcher
    /// waits on a parked lease is leased (added to `leased`) and handed over, with a new parked lease
    /// unless the batch accepted more of the function (then it leases again at once).
    pub(crate) fn hand_over(
        &mut self,
        accepts: &[Accept],
        seqs: &[Option<i64>],
        leased: &mut HashSet<i64>,
    ) {
        if self.0.is_empty() {
            return;
        }
        for (i, (a, seq)) in accepts.iter().zip(seqs).enumerate() {
            let Some(seq) = *seq else { continue };
            let Some(slot) = self.0.remove(&a.function) else {
                continue;
            };
            if slot.tx.is_closed() {
                continue;
            }
            if slot.due_ms.is_some_and(|due| due <= a.now_ms) {
                // An older event is due first: the dispatcher's timer takes it, in queue order.
                self.0.insert(a.function.clone(), slot);
                continue;
            }
            {
                let mut arming = slot.arming.lock().unwrap_or_else(PoisonError::into_inner);
                if !arming.armed {
                    // The dispatcher is busy: it leases this event itself once it waits.
                    arming.skipped = true;
                    drop(arming);
                    self.0.insert(a.function.clone(), slot);
                    continue;
                }
            }
            let more = accepts[i + 1..]
                .iter()
                .zip(&seqs[i + 1..])
                .any(|(b, s)| s.is_some() && b.function == a.function);
            let then = if more {
                Then::Again
            } else {
                Then::Wait(self.park(&a.function, slot.due_ms))
            };
            let event = QueuedEvent {
                seq,
                function: a.function.clone(),
                request_id: a.request_id.clone(),
                body: a.body.clone(),
                enqueued_ms: a.now_ms,
                attempts: 0,
            };
            leased.insert(seq);
            if slot
                .tx
                .send(Lease {
                    event: Some(event),
                    then,
                })
                .is_err()
            {
                // Given up meanwhile: the event stays in its queue, for the next lease.
                leased.remove(&seq);
                self.0.remove(&a.function);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::tests::temp_dir;
    use crate::{Lease, Store, Then};

    fn parked(lease: Lease) -> crate::Parked {
        match lease.then {
            Then::Wait(p) => p,
            Then::Again => panic!("no other event is due"),
        }
    }

    async fn accept(s: &Store, id: &str, now_ms: i64) {
        s.enqueue("f", id, Bytes::from(id.to_owned()), now_ms, 1000)
            .await
            .expect("accepted");
    }

    /// A lease that found nothing waits; the next accept hands its event over, leased (no other lease takes
    /// it), with the body it was accepted with, and parks the next lease.
    #[tokio::test]
    async fn an_event_accepted_while_a_lease_waits_is_handed_over_leased() {
        let dir = temp_dir("lease-handed");
        let s = Store::open(&dir).expect("open");
        let first = s.lease("f", 1).await.expect("lease");
        assert!(first.event.is_none());
        let mut p = parked(first);
        assert_eq!(p.due_ms(), None);
        assert!(p.wait_from_now());
        accept(&s, "r1", 1).await;
        let handed = p.handed_over().await.expect("handed over");
        let ev = handed.event.as_ref().expect("r1");
        assert_eq!(
            (ev.request_id.as_str(), &ev.body[..], ev.attempts),
            ("r1", &b"r1"[..], 0)
        );
        assert!(
            s.lease_next("f", 1).await.expect("lease").event.is_none(),
            "r1 is leased"
        );
        let seq = ev.seq;
        let mut p = parked(handed);
        assert!(p.wait_from_now());
        s.complete(seq).await.expect("complete");
        assert_eq!(s.queue_len("f").await.expect("len"), 0);
        accept(&s, "r2", 1).await;
        let again = p.handed_over().await.expect("the next one too");
        assert_eq!(again.event.expect("r2").request_id, "r2");
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Callers accepting at once while a lease waits: following what each lease says (lease again, or wait
    /// for the next handed over) takes every event once, in queue order.
    #[tokio::test]
    async fn accepts_at_once_are_taken_once_each_in_queue_order() {
        let dir = temp_dir("lease-order");
        let s = Store::open(&dir).expect("open");
        let mut lease = s.lease("f", 1).await.expect("lease");
        let n = 100;
        let calls: Vec<_> = (0..n)
            .map(|i| {
                let s = s.clone();
                tokio::spawn(async move { accept(&s, &format!("r{i}"), 1).await })
            })
            .collect();
        let mut seqs = Vec::new();
        let last = loop {
            if let Some(ev) = lease.event.take() {
                seqs.push(ev.seq);
            }
            lease = match lease.then {
                Then::Again => s.lease("f", 1).await.expect("lease"),
                Then::Wait(p) if seqs.len() == n => break p,
                Then::Wait(mut p) if p.wait_from_now() => {
                    p.handed_over().await.expect("handed over")
                }
                // Accepted before it waited: left in the queue.
                Then::Wait(p) => {
                    assert!(p.cancel().is_none());
                    s.lease("f", 1).await.expect("lease")
                }
            };
        };
        for c in calls {
            c.await.expect("joined");
        }
        assert!(last.cancel().is_none(), "nothing more was accepted");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "queue order: {seqs:?}"
        );
        assert!(s.lease_next("f", 1).await.expect("lease").event.is_none());
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A lease given up before an accept leaves the event in its queue, not leased; one given up after it
    /// brings the handed-over event back.
    #[tokio::test]
    async fn a_lease_given_up_keeps_every_event() {
        let dir = temp_dir("lease-cancel");
        let s = Store::open(&dir).expect("open");
        let p = parked(s.lease("f", 1).await.expect("lease"));
        assert!(p.cancel().is_none());
        accept(&s, "r1", 1).await;
        let lease = s.lease("f", 1).await.expect("lease");
        assert_eq!(lease.event.as_ref().expect("r1 is due").request_id, "r1");
        let p = parked(lease);
        assert!(p.wait_from_now());
        accept(&s, "r2", 1).await;
        // The store's thread hands over after it answers the accept: a request it runs after that commit
        // (any request) is answered once the hand-over is done.
        assert_eq!(s.queue_len("f").await.expect("len"), 2);
        let back = p.cancel().expect("r2 was handed over first");
        assert_eq!(back.event.expect("r2").request_id, "r2");
        assert!(s.lease_next("f", 1).await.expect("lease").event.is_none());
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// An event waiting for its retry is not overtaken once it is due: an event accepted before that time is
    /// handed over; one accepted after it is not, and leasing again takes the retry first.
    #[tokio::test]
    async fn an_event_due_for_its_retry_is_not_overtaken() {
        let dir = temp_dir("lease-retry");
        let s = Store::open(&dir).expect("open");
        accept(&s, "r0", 1).await;
        let r0 = s.lease("f", 1).await.expect("lease").event.expect("r0");
        s.retry_later(r0.seq, 1, 100).await.expect("retry written");
        let mut p = parked(s.lease("f", 50).await.expect("lease"));
        assert_eq!(p.due_ms(), Some(100));
        assert!(p.wait_from_now());
        accept(&s, "r1", 60).await;
        let handed = p
            .handed_over()
            .await
            .expect("r1 is handed over before r0 is due");
        assert_eq!(handed.event.as_ref().expect("r1").request_id, "r1");
        let p = parked(handed);
        assert_eq!(p.due_ms(), Some(100));
        assert!(p.wait_from_now());
        accept(&s, "r2", 150).await;
        assert!(p.cancel().is_none(), "r2 is not handed over ahead of r0");
        let next = s.lease("f", 150).await.expect("lease");
        assert_eq!(next.event.expect("r0 first").request_id, "r0");
        assert!(matches!(next.then, Then::Again));
        let last = s.lease("f", 150).await.expect("lease");
        assert_eq!(last.event.expect("then r2").request_id, "r2");
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// While the dispatcher does not wait yet (it waits for an instance), accepted events stay in their
    /// queue, not leased, however many come: waiting then says so, and leasing takes them in order.
    #[tokio::test]
    async fn events_accepted_before_the_dispatcher_waits_stay_in_their_queue() {
        let dir = temp_dir("lease-busy");
        let s = Store::open(&dir).expect("open");
        let p = parked(s.lease("f", 1).await.expect("lease"));
        for i in 0..3 {
            accept(&s, &format!("r{i}"), 1).await;
        }
        assert_eq!(s.queue_len("f").await.expect("len"), 3);
        assert!(!p.wait_from_now(), "events came before it waited");
        assert!(p.cancel().is_none(), "none was leased");
        for i in 0..3 {
            let lease = s.lease("f", 1).await.expect("lease");
            assert_eq!(lease.event.expect("due").request_id, format!("r{i}"));
        }
        drop(s);
        let _ = std::fs::remove_dir_all(dir);
    }
}
