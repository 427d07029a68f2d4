//! Batches prepared one ahead on a worker thread, so that the next batch is prepared (decoded,
//! augmented, copied to the device) while the current one trains: a [`BatchSource`] served
//! ahead ([`with_prefetch`]), or any sequence of batches produced in order ([`in_order`], for a
//! loop whose augmentation draws from one stream per epoch).
//!
//! The wrapper changes no result: a source returns the same batch for the same
//! `(epoch, index)` whoever asks and in whatever order, so the worker computing batch `i + 1`
//! early gives what the trainer would have computed itself. A request for another batch than the
//! one prepared (a trainer that skips an iteration, an evaluation that restarts) waits for the
//! prepared one, drops it and asks for the one wanted; nothing depends on the guess being right.

use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{Receiver, Sender, channel, sync_channel};
use std::thread;

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use crate::train::BatchSource;

/// Which batch, as `(epoch, index)`.
type Key = (usize, usize);

/// A batch, or the error the source returned for it.
type Served = (Key, Result<(Tensor, Tensor)>);

/// The trainer's side of a prefetching source: a [`BatchSource`] that asks the worker for each
/// batch and, once it has it, for the batch after it.
pub struct Prefetched {
    per_epoch: usize,
    requests: Sender<Key>,
    batches: Receiver<Served>,
    /// Whether the worker was asked for a batch it has not handed over yet.
    pending: bool,
}

impl Prefetched {
    /// The batch after `key` in a run's order: the next index, or the first of the next epoch.
    fn after(&self, (epoch, index): Key) -> Key {
        if index + 1 < self.per_epoch {
            (epoch, index + 1)
        } else {
            (epoch + 1, 0)
        }
    }

    fn ask(&mut self, key: Key) -> Result<()> {
        self.requests.send(key).map_err(|_| stopped())?;
        self.pending = true;
        Ok(())
    }

    fn receive(&mut self) -> Result<Served> {
        self.pending = false;
        self.batches.recv().map_err(|_| stopped())
    }
}

/// The error of a worker that is gone: it only stops early by panicking.
fn stopped() -> Error {
    Error::Model("the batch-prefetch worker stopped (it panicked)".into())
}

impl BatchSource for Prefetched {
    fn batches_per_epoch(&self) -> usize {
        self.per_epoch
    }

    fn batch(&mut self, epoch: usize, index: usize) -> Result<(Tensor, Tensor)> {
        let want = (epoch, index);
        let mut ready = None;
        if self.pending {
            let (key, served) = self.receive()?;
            if key == want {
                ready = Some(served);
            }
        }
        let served = match ready {
            Some(served) => served,
            None => {
                self.ask(want)?;
                self.receive()?.1
            }
        };
        // Ask for the next batch before handing this one over, so that it is prepared while
        // this one trains.
        if self.per_epoch > 0 {
            self.ask(self.after(want))?;
        }
        served
    }
}

/// Runs `f` with `source` served through a [`Prefetched`] whose worker thread prepares the next
/// batch while the current one is in use; the worker ends when `f` returns. Batches are the
/// source's own, bit for bit (the source's contract: one batch per `(epoch, index)`).
///
/// ```
/// use tensor_core::{BatchSource, Device, Tensor, prefetch::with_prefetch};
///
/// struct Counting;
/// impl BatchSource for Counting {
///     fn batches_per_epoch(&self) -> usize { 3 }
///     fn batch(&mut self, epoch: usize, index: usize) -> tensor_core::Result<(Tensor, Tensor)> {
///         let x = (10 * epoch + index) as f32;
///         Ok((Tensor::new(&[x], &Device::Cpu)?, Tensor::new(&[0u32], &Device::Cpu)?))
///     }
/// }
///
/// let mut source = Counting;
/// let seen = with_prefetch(&mut source, |batches| -> tensor_core::Result<Vec<f32>> {
///     let mut seen = Vec::new();
///     for (e, i) in [(0, 0), (0, 1), (0, 2), (1, 0), (1, 2)] {
///         seen.push(batches.batch(e, i)?.0.to_vec1::<f32>()?[0]);
///     }
///     Ok(seen)
/// })?;
/// assert_eq!(seen, [0.0, 1.0, 2.0, 10.0, 12.0]);
/// # Ok::<(), tensor_core::Error>(())
/// ```
pub fn with_prefetch<S, R>(source: &mut S, f: impl FnOnce(&mut Prefetched) -> R) -> R
where
    S: BatchSource + Send + ?Sized,
{
    let per_epoch = source.batches_per_epoch();
    let (requests, asked) = channel::<Key>();
    let (served, batches) = channel::<Served>();
    thread::scope(|scope| {
        scope.spawn(move || {
            // Ends when the trainer's side is dropped (its sender closes) or stops listening.
            for (epoch, index) in asked {
                let batch = source.batch(epoch, index);
                if served.send(((epoch, index), batch)).is_err() {
                    break;
                }
            }
        });
        let mut prefetched = Prefetched {
            per_epoch,
            requests,
            batches,
            pending: false,
        };
        f(&mut prefetched)
        // `prefetched` drops here, closing the request channel, so the scope can join the
        // worker (after at most the one batch it was preparing).
    })
}

/// What the [`in_order`] worker hands over: an item, the end, or the panic that stopped it.
enum Produced<T> {
    Item(T),
    End,
    Panicked(Box<dyn std::any::Any + Send + 'static>),
}

/// The items of [`in_order`], as the worker produces them.
pub struct InOrder<T> {
    produced: Receiver<Produced<T>>,
    ended: bool,
}

impl<T> Iterator for InOrder<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.ended {
            return None;
        }
        match self.produced.recv() {
            Ok(Produced::Item(item)) => Some(item),
            Ok(Produced::End) | Err(_) => {
                self.ended = true;
                None
            }
            // The panic surfaces on the caller's thread, as it would have without a worker,
            // rather than ending the sequence early as if it were complete.
            Ok(Produced::Panicked(payload)) => panic::resume_unwind(payload),
        }
    }
}

/// Runs `f` over `items`, each produced on a worker thread while `f` works on the one before:
/// the worker is one item ahead (a rendezvous channel) and stops when `f` returns. The items and
/// their order are those of `items`, however fast either side is, so an iterator that draws
/// from one random stream (a per-epoch augmentation generator) gives the same numbers as when
/// iterated in place.
///
/// ```
/// use tensor_core::prefetch::in_order;
///
/// let squares: Vec<u64> = in_order((1..=4u64).map(|i| i * i), |items| items.collect());
/// assert_eq!(squares, [1, 4, 9, 16]);
/// ```
pub fn in_order<I, R>(items: I, f: impl FnOnce(&mut InOrder<I::Item>) -> R) -> R
where
    I: Iterator + Send,
    I::Item: Send,
{
    let (hand_over, produced) = sync_channel::<Produced<I::Item>>(0);
    thread::scope(|scope| {
        scope.spawn(move || {
            let mut items = items;
            loop {
                // A panic in `items` is handed over, not left to end the sequence silently.
                let next = match panic::catch_unwind(AssertUnwindSafe(|| items.next())) {
                    Ok(Some(item)) => Produced::Item(item),
                    Ok(None) => Produced::End,
                    Err(payload) => Produced::Panicked(payload),
                };
                let last = !matches!(next, Produced::Item(_));
                // The receiver is gone once `f` returned: stop producing.
                if hand_over.send(next).is_err() || last {
                    break;
                }
            }
        });
        let mut items = InOrder {
            produced,
            ended: false,
        };
        f(&mut items)
    })
}
