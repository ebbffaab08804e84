//! Keep-alive HTTP/1.1 connections to one backend, reused most-recently-used first.
//!
//! A connection is taken out of the pool for one exchange and put back when the backend's
//! response body has been read to its end (see `BackendBody` in the router), so a pooled
//! connection is always free for the next request. The exchange itself is
//! [`upstream::send`](crate::upstream::send), run in the task of the request.
//!
//! A pooled connection the backend has closed in the meantime is noticed before it is used
//! (the runtime has seen the end of stream) and dropped; one closed just as a request went
//! out gets an idempotent request without a body sent again, on another connection.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::Response;
use hyper::body::Incoming;
use hyper::http::request::Parts;
use tokio::net::TcpStream;

use crate::upstream::{self, Connection, ExchangeError, ResponseBody};

/// Why a request could not be exchanged with the backend.
#[derive(Debug)]
pub(crate) enum PoolError {
    /// No connection could be made (refused, unreachable, connect timeout). The request
    /// was not sent and comes back, so it can go to another backend.
    Connect(String, Box<(Parts, Incoming)>),
    /// The connection failed while sending the request or reading the response head.
    Backend(ExchangeError),
}

struct IdleConnection {
    connection: Connection,
    since: Instant,
}

pub(crate) struct ConnectionPool {
    address: String,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
    idle: Mutex<Vec<IdleConnection>>,
}

impl ConnectionPool {
    pub(crate) fn new(
        address: String,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
    ) -> Self {
        ConnectionPool {
            address,
            connect_timeout,
            idle_timeout,
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<IdleConnection>> {
        // The lock guards a plain Vec whose operations cannot leave it half-changed.
        self.idle
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Sends the request on a pooled connection, or a new one, and returns the response
    /// head; the body holds the connection until its end, then goes back with
    /// [`put_back`](Self::put_back).
    pub(crate) async fn send(
        &self,
        mut parts: Parts,
        mut body: Incoming,
    ) -> Result<Response<ResponseBody>, PoolError> {
        loop {
            let (connection, reused) = match self.take_idle() {
                Some(connection) => (connection, true),
                None => match self.connect().await {
                    Ok(connection) => (connection, false),
                    Err(reason) => {
                        return Err(PoolError::Connect(reason, Box::new((parts, body))));
                    }
                },
            };
            match upstream::send(connection, &mut parts, &mut body).await {
                Ok(response) => return Ok(response),
                Err(failed) if reused && failed.may_resend => {
                    tracing::debug!(backend = %self.address, error = %failed.error, "kept-alive connection closed by the backend, request sent again");
                }
                Err(failed) => return Err(PoolError::Backend(failed.error)),
            }
        }
    }

    /// Returns a connection whose exchange is complete.
    pub(crate) fn put_back(&self, connection: Connection) {
        let mut idle = self.idle();
        if idle.len() < self.max_idle {
            idle.push(IdleConnection {
                connection,
                since: Instant::now(),
            });
        }
    }

    /// Closes connections idle for longer than the idle timeout or closed by the backend.
    pub(crate) fn close_expired(&self) {
        let now = Instant::now();
        self.idle().retain(|connection| {
            connection.connection.is_open_and_quiet()
                && now.duration_since(connection.since) < self.idle_timeout
        });
    }

    /// Idle connections now in the pool.
    pub(crate) fn idle_count(&self) -> usize {
        self.idle().len()
    }

    fn take_idle(&self) -> Option<Connection> {
        let mut idle = self.idle();
        while let Some(idle_connection) = idle.pop() {
            if idle_connection.connection.is_open_and_quiet() {
                return Some(idle_connection.connection);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Connection, String> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.address))
                .await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(error.to_string()),
                Err(_) => return Err(format!("no connection within {:?}", self.connect_timeout)),
            };
        // Latency matters more than packet count for a proxy.
        let _ = stream.set_nodelay(true);
        Ok(Connection::new(stream))
    }
}
