//! Graceful shutdown of connection tasks: a signal each connection checks on every poll
//! without taking a lock, and a count of open connections to wait for.
//!
//! A connection task is polled several times per request; a `watch` channel's `changed()`
//! takes the channel's lock on every one of those polls to register its waker. Here a
//! connection registers its waker once (again only if its task's waker changes) and
//! otherwise reads one atomic flag.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::sync::Notify;

/// Tells the connections of one listener to finish, and waits until they have. Clones
/// share one signal.
#[derive(Default, Clone)]
pub(crate) struct Drain {
    state: Arc<State>,
}

#[derive(Default)]
struct State {
    draining: AtomicBool,
    open: AtomicUsize,
    wakers: Mutex<Wakers>,
    all_closed: Notify,
}

/// One waker per watching connection that has been polled; freed slots are reused.
#[derive(Default)]
struct Wakers {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
}

impl State {
    fn wakers(&self) -> MutexGuard<'_, Wakers> {
        // The lock guards a plain Vec whose operations cannot leave it half-changed.
        self.wakers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Drain {
    /// Wraps a connection: it is told to shut down gracefully once [`Drain::drain`] is
    /// called, and counts as open until it is dropped.
    pub(crate) fn watch<C: GracefulConnection>(&self, connection: Pin<Box<C>>) -> Watched<C> {
        self.state.open.fetch_add(1, Ordering::Relaxed);
        Watched {
            connection,
            state: self.state.clone(),
            slot: None,
            registered: None,
            shutting_down: false,
        }
    }

    /// Tells every watched connection, present and future, to finish its requests and
    /// close; returns once all of them have been dropped.
    pub(crate) async fn drain(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
        for waker in self.state.wakers().slots.iter().flatten() {
            waker.wake_by_ref();
        }
        loop {
            let all_closed = self.state.all_closed.notified();
            let mut all_closed = std::pin::pin!(all_closed);
            // Registered before the count is read, so a last close in between still wakes.
            all_closed.as_mut().enable();
            if self.state.open.load(Ordering::SeqCst) == 0 {
                return;
            }
            all_closed.await;
        }
    }
}

/// A server connection that can be asked to finish its requests and close.
pub(crate) trait GracefulConnection: Future<Output = hyper::Result<()>> {
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, B, S> GracefulConnection for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http1::Connection::graceful_shutdown(self);
    }
}

impl<I, B, S, E> GracefulConnection for hyper::server::conn::http2::Connection<I, S, E>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper::server::conn::http2::Connection::graceful_shutdown(self);
    }
}

/// A connection under a [`Drain`].
pub(crate) struct Watched<C> {
    connection: Pin<Box<C>>,
    state: Arc<State>,
    /// This connection's index in the waker list, once it has been polled.
    slot: Option<usize>,
    /// The waker stored in that slot, to skip the lock while the task's waker is the same.
    registered: Option<Waker>,
    shutting_down: bool,
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = hyper::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if !this.shutting_down {
            if this.state.draining.load(Ordering::SeqCst) {
                this.shutting_down = true;
                this.connection.as_mut().graceful_shutdown();
            } else if !this
                .registered
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                this.register(cx.waker());
                // The flag may have been set before the waker was stored: look again.
                if this.state.draining.load(Ordering::SeqCst) {
                    this.shutting_down = true;
                    this.connection.as_mut().graceful_shutdown();
                }
            }
        }
        this.connection.as_mut().poll(cx)
    }
}

impl<C> Watched<C> {
    fn register(&mut self, waker: &Waker) {
        let mut wakers = self.state.wakers();
        let slot = match self.slot {
            Some(slot) => slot,
            None => {
                let slot = match wakers.free.pop() {
                    Some(free) => free,
                    None => {
                        wakers.slots.push(None);
                        wakers.slots.len() - 1
                    }
                };
                self.slot = Some(slot);
                slot
            }
        };
        wakers.slots[slot] = Some(waker.clone());
        self.registered = Some(waker.clone());
    }
}

impl<C> Drop for Watched<C> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut wakers = self.state.wakers();
            wakers.slots[slot] = None;
            wakers.free.push(slot);
        }
        if self.state.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.state.all_closed.notify_waiters();
        }
    }
}
