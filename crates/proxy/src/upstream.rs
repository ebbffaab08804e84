//! HTTP/1.1 exchanges with a backend, driven in the request's own task.
//!
//! hyper's client runs every connection as a task of its own and hands each request and
//! response across channels; measured under load, that hand-off (channel, wake-up, a
//! second task's poll, the body channel) was most of what the router spent per request in
//! user space beyond HAProxy. Here the task serving the client writes the request to the
//! backend and reads the response head itself, and the response body, read on demand as
//! hyper's server pulls it, carries the connection and gives it back to the pool at its end.
//! httparse parses; hyper's server still speaks to the clients.
//!
//! Framing follows RFC 9112 §6: a request body goes out with its `Content-Length` or
//! chunked; a response body ends at its `Content-Length`, at the last chunk, or at the
//! close of the connection, and has none for `HEAD`, 1xx, 204 and 304. Interim 1xx
//! responses are skipped. A connection carries another exchange only when both messages
//! ended where their framing said and the backend did not ask to close it.

use std::future::poll_fn;
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Response, StatusCode, Version};
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

/// Room made in the read buffer before a read; a read that fills it asks for more next time.
const READ_SIZE: usize = 8 * 1024;
const LARGE_READ_SIZE: usize = 64 * 1024;
/// Request bytes gathered before they are written, so a small body goes out with its head.
const WRITE_BATCH: usize = 64 * 1024;
/// Largest response head (status line and headers) and largest chunked trailer section.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;

/// Why an exchange with a backend failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("the backend closed the connection {0}")]
    Closed(&'static str),
    #[error("invalid response from the backend: {0}")]
    Invalid(&'static str),
    #[error("reading the client's request body: {0}")]
    RequestBody(#[source] hyper::Error),
}

/// A failed [`send`], and whether the request may go out again on another connection:
/// nothing of a response arrived, and the request is idempotent and has no body, so a
/// backend that closed a kept-alive connection just as it was reused cannot have acted on it.
#[derive(Debug)]
pub(crate) struct SendError {
    pub(crate) error: ExchangeError,
    pub(crate) may_resend: bool,
}

/// One connection to a backend, with its buffers (kept, so steady traffic allocates none).
pub(crate) struct Connection {
    stream: TcpStream,
    read_buf: BytesMut,
    write_buf: Vec<u8>,
    /// The last read filled the room it had: the next one gets [`LARGE_READ_SIZE`].
    read_filled: bool,
    /// Where the last response head's names and values lie (kept for its capacity).
    header_positions: Vec<HeaderPosition>,
}

/// The byte ranges of one header's name and value in a response head.
type HeaderPosition = (Range<usize>, Range<usize>);

impl Connection {
    pub(crate) fn new(stream: TcpStream) -> Self {
        Connection {
            stream,
            read_buf: BytesMut::new(),
            write_buf: Vec::new(),
            read_filled: false,
            header_positions: Vec::new(),
        }
    }

    /// Whether an idle connection can carry a request: the backend has neither closed it
    /// nor sent anything unasked. Asks the runtime's readiness state, not the socket: the
    /// last read of an exchange nearly always comes back short, which clears it, so only an
    /// event from the kernel since (data, end of stream, reset) sets it again. When that
    /// read happened to fill the buffer, a good connection looks used and is only dropped.
    pub(crate) fn is_open_and_quiet(&self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.stream.poll_read_ready(&mut cx).is_pending()
    }

    fn poll_read_more(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let room = if self.read_filled {
            LARGE_READ_SIZE
        } else {
            READ_SIZE
        };
        if self.read_buf.capacity() - self.read_buf.len() < room / 2 {
            self.read_buf.reserve(room);
        }
        let before = self.read_buf.capacity() - self.read_buf.len();
        let read = ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut self.stream),
            cx,
            &mut self.read_buf
        ))?;
        self.read_filled = read == before;
        Poll::Ready(Ok(read))
    }

    /// Whether the backend has sent anything (or closed) since the last read.
    fn poll_readable(&self, cx: &mut Context<'_>) -> bool {
        self.stream.poll_read_ready(cx).is_ready()
    }
}

/// How the request's body goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestFraming {
    NoBody,
    /// Raw bytes, as many as the `Content-Length` already in the headers says.
    Length,
    Chunked,
}

fn request_framing(parts: &Parts, body: &Incoming) -> (RequestFraming, Option<u64>) {
    if parts.headers.contains_key(header::TRANSFER_ENCODING) {
        // hyper's server accepts a transfer coding only with `chunked` last, and decodes it:
        // the body is chunked again, with the header as it came.
        (RequestFraming::Chunked, None)
    } else if parts.headers.contains_key(header::CONTENT_LENGTH) {
        (RequestFraming::Length, None)
    } else if body.is_end_stream() {
        (RequestFraming::NoBody, None)
    } else if let Some(length) = body.size_hint().exact() {
        // An HTTP/2 request may carry a body without saying its length up front.
        (RequestFraming::Length, Some(length))
    } else {
        (RequestFraming::Chunked, None)
    }
}

fn encode_head(
    buf: &mut Vec<u8>,
    parts: &Parts,
    framing: RequestFraming,
    added_length: Option<u64>,
) {
    buf.extend_from_slice(parts.method.as_str().as_bytes());
    buf.push(b' ');
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    buf.extend_from_slice(if target.is_empty() { "/" } else { target }.as_bytes());
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    encode_fields(buf, &parts.headers);
    if let Some(length) = added_length {
        // Writing to a Vec cannot fail.
        let _ = write!(buf, "content-length: {length}\r\n");
    } else if framing == RequestFraming::Chunked
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
    {
        buf.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    buf.extend_from_slice(b"\r\n");
}

/// Header or trailer fields, one `name: value` line each.
fn encode_fields(buf: &mut Vec<u8>, fields: &HeaderMap) {
    for (name, value) in fields {
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
}

/// How the request went out.
enum Written {
    Whole,
    /// The backend answered before the whole request was written (an early 413 or 401,
    /// say): the answer is read and the connection is not used again.
    Cut,
}

/// Writes the request head and body, gathering what is at hand into one write.
async fn write_request(
    connection: &mut Connection,
    body: &mut Incoming,
    framing: RequestFraming,
) -> Result<Written, ExchangeError> {
    // An ended body yields its end at once: a chunked one still gets its last chunk below.
    let mut body_done = framing == RequestFraming::NoBody;
    let mut written = 0;
    poll_fn(|cx| {
        loop {
            let mut body_pending = false;
            while !body_done && connection.write_buf.len() < WRITE_BATCH {
                match Pin::new(&mut *body).poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        let buf = &mut connection.write_buf;
                        match frame.into_data() {
                            Ok(data) if data.is_empty() => {}
                            Ok(data) if framing == RequestFraming::Chunked => {
                                let _ = write!(buf, "{:X}\r\n", data.len());
                                buf.extend_from_slice(&data);
                                buf.extend_from_slice(b"\r\n");
                            }
                            Ok(data) => buf.extend_from_slice(&data),
                            Err(frame) => {
                                if framing == RequestFraming::Chunked
                                    && let Ok(trailers) = frame.into_trailers()
                                {
                                    buf.extend_from_slice(b"0\r\n");
                                    encode_fields(buf, &trailers);
                                    buf.extend_from_slice(b"\r\n");
                                    body_done = true;
                                }
                            }
                        }
                    }
                    Poll::Ready(Some(Err(error))) => {
                        return Poll::Ready(Err(ExchangeError::RequestBody(error)));
                    }
                    Poll::Ready(None) => {
                        if framing == RequestFraming::Chunked {
                            connection.write_buf.extend_from_slice(b"0\r\n\r\n");
                        }
                        body_done = true;
                    }
                    Poll::Pending => {
                        body_pending = true;
                        break;
                    }
                }
            }
            if written < connection.write_buf.len() {
                match Pin::new(&mut connection.stream)
                    .poll_write(cx, &connection.write_buf[written..])
                {
                    Poll::Ready(Ok(0)) => {
                        return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
                    }
                    Poll::Ready(Ok(count)) => {
                        written += count;
                        if written == connection.write_buf.len() {
                            connection.write_buf.clear();
                            written = 0;
                        }
                        continue;
                    }
                    Poll::Ready(Err(error)) => return Poll::Ready(Err(error.into())),
                    Poll::Pending => {}
                }
            } else if body_done {
                return Poll::Ready(Ok(Written::Whole));
            } else if !body_pending {
                continue;
            }
            // Waiting for the client's body or for room in the socket: an answer from the
            // backend meanwhile ends the request here.
            if connection.poll_readable(cx) {
                connection.write_buf.clear();
                return Poll::Ready(Ok(Written::Cut));
            }
            return Poll::Pending;
        }
    })
    .await
}

/// Sends the request on `connection` and reads the response head. The body is read as
/// the returned response's body is polled. On success the request's header map, emptied,
/// holds the response's headers (its memory reused, so none is allocated for them); on
/// failure the request is as it was, to be sent again.
pub(crate) async fn send(
    mut connection: Connection,
    parts: &mut Parts,
    body: &mut Incoming,
) -> Result<Response<ResponseBody>, SendError> {
    let (framing, added_length) = request_framing(parts, body);
    let replayable = body.is_end_stream() && is_idempotent(&parts.method);
    connection.write_buf.clear();
    encode_head(&mut connection.write_buf, parts, framing, added_length);
    let written = match write_request(&mut connection, body, framing).await {
        Ok(written) => written,
        Err(error) => {
            // A reset or a broken pipe before any answer: the backend had closed the
            // connection, and a replayable request can go out again.
            let may_resend = replayable
                && matches!(&error, ExchangeError::Io(e) if e.kind() == io::ErrorKind::BrokenPipe
                    || e.kind() == io::ErrorKind::ConnectionReset);
            return Err(SendError { error, may_resend });
        }
    };
    let mut received_any = false;
    let head = poll_fn(|cx| poll_response_head(&mut connection, &mut received_any, cx)).await;
    let head = match head {
        Ok(head) => head,
        Err((error, nothing_received)) => {
            return Err(SendError {
                error,
                may_resend: replayable && nothing_received,
            });
        }
    };
    let mut headers = std::mem::take(&mut parts.headers);
    headers.clear();
    into_response(connection, head, headers, &parts.method, written).map_err(|error| SendError {
        error,
        may_resend: false,
    })
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// A parsed response head: the head's bytes, which the header values share, and where
/// each name and value lies in them.
struct ResponseHead {
    bytes: Bytes,
    code: u16,
    version: Version,
    headers: Vec<HeaderPosition>,
}

/// Reads until a final response head is complete. `received_any` records, across polls,
/// whether the backend has sent anything yet (an interim answer counts).
fn poll_response_head(
    connection: &mut Connection,
    received_any: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<ResponseHead, (ExchangeError, bool)>> {
    loop {
        if !connection.read_buf.is_empty() {
            *received_any = true;
            let positions = &mut connection.header_positions;
            match parse_response_head(&connection.read_buf, positions) {
                Ok(Some((length, code, version))) => {
                    if (100..200).contains(&code) && code != 101 {
                        // Interim (100 Continue, 103 Early Hints): the final answer follows.
                        connection.read_buf.advance(length);
                        continue;
                    }
                    let bytes = connection.read_buf.split_to(length).freeze();
                    return Poll::Ready(Ok(ResponseHead {
                        bytes,
                        code,
                        version,
                        headers: std::mem::take(&mut connection.header_positions),
                    }));
                }
                Ok(None) if connection.read_buf.len() >= MAX_HEAD => {
                    return Poll::Ready(Err((
                        ExchangeError::Invalid("response head over 64 KiB"),
                        false,
                    )));
                }
                Ok(None) => {}
                Err(reason) => return Poll::Ready(Err((ExchangeError::Invalid(reason), false))),
            }
        }
        match connection.poll_read_more(cx) {
            Poll::Ready(Ok(0)) => {
                let error = if *received_any {
                    ExchangeError::Closed("in the middle of the response head")
                } else {
                    ExchangeError::Closed("without answering")
                };
                return Poll::Ready(Err((error, !*received_any)));
            }
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(error)) => {
                let reset = error.kind() == io::ErrorKind::ConnectionReset;
                return Poll::Ready(Err((error.into(), reset && !*received_any)));
            }
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// The head's length, status and version, or `None` when incomplete; `positions` gets
/// where each header's name and value lie in `buf`.
fn parse_response_head(
    buf: &[u8],
    positions: &mut Vec<HeaderPosition>,
) -> Result<Option<(usize, u16, Version)>, &'static str> {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut []);
    let length = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut response,
        buf,
        &mut headers,
    ) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err("more than 100 headers"),
        Err(_) => return Err("malformed response head"),
    };
    let code = response.code.ok_or("no status code")?;
    let version = match response.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    let start = buf.as_ptr() as usize;
    positions.clear();
    positions.extend(response.headers.iter().map(|h| {
        let name = h.name.as_ptr() as usize - start;
        let value = h.value.as_ptr() as usize - start;
        (name..name + h.name.len(), value..value + h.value.len())
    }));
    Ok(Some((length, code, version)))
}

fn into_response(
    mut connection: Connection,
    head: ResponseHead,
    mut headers: HeaderMap,
    method: &Method,
    written: Written,
) -> Result<Response<ResponseBody>, ExchangeError> {
    let status = StatusCode::from_u16(head.code).map_err(|_| ExchangeError::Invalid("status"))?;
    if status == StatusCode::SWITCHING_PROTOCOLS {
        return Err(ExchangeError::Invalid("101 without an upgrade asked for"));
    }
    headers.reserve(head.headers.len());
    let mut positions = head.headers;
    for (name, value) in positions.drain(..) {
        let name = HeaderName::from_bytes(&head.bytes[name])
            .map_err(|_| ExchangeError::Invalid("header name"))?;
        let value = HeaderValue::from_maybe_shared(head.bytes.slice(value))
            .map_err(|_| ExchangeError::Invalid("header value"))?;
        headers.append(name, value);
    }

    let mut reusable = matches!(written, Written::Whole) && keeps_alive(head.version, &headers);
    let framing = if *method == Method::HEAD
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        Framing::Done
    } else if let Some(chunked) = chunked_last(&headers) {
        if chunked {
            Framing::Chunked(Chunk::Size)
        } else {
            reusable = false;
            Framing::UntilClose
        }
    } else if let Some(length) = content_length(&headers)? {
        if length == 0 {
            Framing::Done
        } else {
            Framing::Length(length)
        }
    } else {
        reusable = false;
        Framing::UntilClose
    };

    connection.header_positions = positions;
    let mut response = Response::new(ResponseBody {
        connection: Some(connection),
        framing,
        reusable,
    });
    *response.status_mut() = status;
    *response.version_mut() = head.version;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The items of a comma-separated header value, trimmed (RFC 9110 §5.6.1); empty items
/// are kept, for callers that must refuse them.
pub(crate) fn list_items(value: &HeaderValue) -> impl Iterator<Item = &[u8]> {
    value
        .as_bytes()
        .split(|byte| *byte == b',')
        .map(<[u8]>::trim_ascii)
}

/// Whether the last transfer coding named is `chunked`; `None` when none is named.
fn chunked_last(headers: &HeaderMap) -> Option<bool> {
    let last_value = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()?;
    let last_coding = list_items(last_value)
        .filter(|item| !item.is_empty())
        .last();
    Some(last_coding.is_some_and(|coding| coding.eq_ignore_ascii_case(b"chunked")))
}

/// The body's length from `Content-Length`; several values must agree.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, ExchangeError> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in list_items(value) {
            let part = std::str::from_utf8(part)
                .ok()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or(ExchangeError::Invalid("Content-Length"))?;
            if length.is_some_and(|known| known != part) {
                return Err(ExchangeError::Invalid("Content-Length values disagree"));
            }
            length = Some(part);
        }
    }
    Ok(length)
}

fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    let mut close = false;
    let mut keep_alive = false;
    for value in headers.get_all(header::CONNECTION) {
        for token in list_items(value) {
            close |= token.eq_ignore_ascii_case(b"close");
            keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    !close && (version == Version::HTTP_11 || keep_alive)
}

/// Where the reading of a response body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Bytes left of a `Content-Length` body.
    Length(u64),
    Chunked(Chunk),
    /// Everything until the backend closes the connection.
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailers,
}

/// A backend's response body, read from the connection as it is polled.
pub(crate) struct ResponseBody {
    connection: Option<Connection>,
    framing: Framing,
    reusable: bool,
}

impl ResponseBody {
    /// The connection, once the body has been read to its end, if it can carry another
    /// exchange.
    pub(crate) fn take_reusable(&mut self) -> Option<Connection> {
        if self.framing != Framing::Done || !self.reusable {
            return None;
        }
        self.connection
            .take()
            .filter(|connection| connection.read_buf.is_empty())
    }

    fn fail(&mut self, error: ExchangeError) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        self.connection = None;
        self.framing = Framing::Done;
        self.reusable = false;
        Poll::Ready(Some(Err(error)))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ExchangeError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ExchangeError>>> {
        let this = &mut *self;
        loop {
            let Some(connection) = this.connection.as_mut() else {
                return Poll::Ready(None);
            };
            let buf = &mut connection.read_buf;
            match this.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(left) | Framing::Chunked(Chunk::Data(left)) if !buf.is_empty() => {
                    let take = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = buf.split_to(take).freeze();
                    let left = left - take as u64;
                    this.framing = match this.framing {
                        Framing::Length(_) if left == 0 => Framing::Done,
                        Framing::Length(_) => Framing::Length(left),
                        _ if left == 0 => Framing::Chunked(Chunk::DataEnd),
                        _ => Framing::Chunked(Chunk::Data(left)),
                    };
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::UntilClose if !buf.is_empty() => {
                    let data = buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(Chunk::Size) if !buf.is_empty() => {
                    match httparse::parse_chunk_size(buf) {
                        Ok(httparse::Status::Complete((used, 0))) => {
                            buf.advance(used);
                            this.framing = Framing::Chunked(Chunk::Trailers);
                            continue;
                        }
                        Ok(httparse::Status::Complete((used, size))) => {
                            buf.advance(used);
                            this.framing = Framing::Chunked(Chunk::Data(size));
                            continue;
                        }
                        Ok(httparse::Status::Partial) if buf.len() < 1024 => {}
                        Ok(httparse::Status::Partial) | Err(_) => {
                            return this.fail(ExchangeError::Invalid("chunk size line"));
                        }
                    }
                }
                Framing::Chunked(Chunk::DataEnd) if buf.len() >= 2 => {
                    if &buf[..2] != b"\r\n" {
                        return this.fail(ExchangeError::Invalid("chunk not ended by CRLF"));
                    }
                    buf.advance(2);
                    this.framing = Framing::Chunked(Chunk::Size);
                    continue;
                }
                Framing::Chunked(Chunk::Trailers) if buf.starts_with(b"\r\n") => {
                    buf.advance(2);
                    this.framing = Framing::Done;
                    return Poll::Ready(None);
                }
                Framing::Chunked(Chunk::Trailers) if !buf.is_empty() => {
                    let mut headers = [httparse::EMPTY_HEADER; 32];
                    match httparse::parse_headers(buf, &mut headers) {
                        Ok(httparse::Status::Complete((used, parsed))) => {
                            let mut trailers = HeaderMap::with_capacity(parsed.len());
                            for h in parsed {
                                if let (Ok(name), Ok(value)) = (
                                    HeaderName::from_bytes(h.name.as_bytes()),
                                    HeaderValue::from_bytes(h.value),
                                ) {
                                    trailers.append(name, value);
                                }
                            }
                            buf.advance(used);
                            this.framing = Framing::Done;
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
                        Ok(httparse::Status::Partial) | Err(_) => {
                            return this.fail(ExchangeError::Invalid("chunked trailers"));
                        }
                    }
                }
                _ => {}
            }
            // The buffer holds too little to go on: read.
            match ready!(connection.poll_read_more(cx)) {
                Ok(0) if this.framing == Framing::UntilClose => {
                    this.framing = Framing::Done;
                    this.reusable = false;
                    return Poll::Ready(None);
                }
                Ok(0) => return this.fail(ExchangeError::Closed("before the end of the body")),
                Ok(_) => {}
                Err(error) => return this.fail(error.into()),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.framing == Framing::Done
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(left) => SizeHint::with_exact(left),
            Framing::Done => SizeHint::with_exact(0),
            Framing::Chunked(_) | Framing::UntilClose => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use http_body_util::BodyExt;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A small deterministic generator (xorshift), so a failing case can be run again.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, bound: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % bound
        }
    }

    /// A chunked body with chunks of random sizes, some with extensions, and trailers
    /// every other seed: (payload, bytes on the wire).
    fn chunked_wire(rng: &mut Rng, with_trailers: bool) -> (Vec<u8>, Vec<u8>) {
        let mut payload = Vec::new();
        let mut wire = Vec::new();
        for _ in 0..rng.below(6) + 1 {
            let size = rng.below(3000) as usize + 1;
            let data: Vec<u8> = (0..size).map(|_| b'a' + rng.below(26) as u8).collect();
            let extension = if rng.below(3) == 0 { ";name=value" } else { "" };
            wire.extend_from_slice(format!("{size:x}{extension}\r\n").as_bytes());
            wire.extend_from_slice(&data);
            wire.extend_from_slice(b"\r\n");
            payload.extend_from_slice(&data);
        }
        wire.extend_from_slice(b"0\r\n");
        if with_trailers {
            wire.extend_from_slice(b"X-Checksum: 42\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        (payload, wire)
    }

    /// Writes `response` in random pieces to a fresh loopback connection and reads it back
    /// as the router does: head, then body frames to the end.
    async fn read_back(response: Vec<u8>, rng: &mut Rng) -> (Vec<u8>, Option<HeaderMap>, bool) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut pieces = Vec::new();
        let mut rest = &response[..];
        while !rest.is_empty() {
            let size = (rng.below(9) as usize + 1).min(rest.len());
            pieces.push(rest[..size].to_vec());
            rest = &rest[size..];
        }
        let writer = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            stream.set_nodelay(true).unwrap();
            for piece in pieces {
                stream.write_all(&piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            // Held open until the reader is done: the end must come from the framing.
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let mut connection = Connection::new(TcpStream::connect(address).await.unwrap());
        let mut received_any = false;
        let head = poll_fn(|cx| poll_response_head(&mut connection, &mut received_any, cx))
            .await
            .map_err(|(error, _)| error)
            .unwrap();
        let mut body = into_response(
            connection,
            head,
            HeaderMap::new(),
            &Method::GET,
            Written::Whole,
        )
        .unwrap()
        .into_body();
        let mut payload = Vec::new();
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.unwrap();
            match frame.into_data() {
                Ok(data) => payload.extend_from_slice(&data),
                Err(frame) => trailers = frame.into_trailers().ok(),
            }
        }
        let reusable = body.take_reusable().is_some();
        writer.abort();
        (payload, trailers, reusable)
    }

    #[tokio::test]
    async fn bodies_split_anywhere_are_read_whole_and_end_where_their_framing_says() {
        for seed in 1..=60u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let with_trailers = seed % 2 == 0;
            let (payload, wire) = chunked_wire(&mut rng, with_trailers);
            let mut response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            response.extend_from_slice(&wire);
            let (read, trailers, reusable) = read_back(response, &mut rng).await;
            assert!(read == payload, "seed {seed}: chunked payload changed");
            assert_eq!(
                trailers.map(|t| t["x-checksum"].clone()),
                with_trailers.then(|| HeaderValue::from_static("42")),
                "seed {seed}"
            );
            assert!(reusable, "seed {seed}: a chunked body read to its end");

            let mut response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                payload.len()
            )
            .into_bytes();
            response.extend_from_slice(&payload);
            let (read, trailers, reusable) = read_back(response, &mut rng).await;
            assert!(
                read == payload,
                "seed {seed}: length-framed payload changed"
            );
            assert!(trailers.is_none() && reusable, "seed {seed}");
        }
    }

    #[test]
    fn response_heads_are_parsed_with_positions_into_the_buffer() {
        let buf = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: b\r\n\r\nok";
        let mut positions = vec![(0..1, 0..1); 5];
        let (length, code, version) = parse_response_head(buf, &mut positions).unwrap().unwrap();
        assert_eq!(
            (length, code, version),
            (buf.len() - 2, 200, Version::HTTP_11)
        );
        let text: Vec<(&[u8], &[u8])> = positions
            .into_iter()
            .map(|(n, v)| (&buf[n], &buf[v]))
            .collect();
        assert_eq!(
            text,
            [
                (&b"Content-Length"[..], &b"2"[..]),
                (&b"X-A"[..], &b"b"[..])
            ]
        );
        let mut positions = Vec::new();
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nA: b", &mut positions).unwrap(),
            None
        );
        assert!(parse_response_head(b"HTTP/1.1 abc\r\n\r\n", &mut positions).is_err());
    }

    #[test]
    fn content_length_values_must_be_digits_and_agree() {
        let mut headers = HeaderMap::new();
        assert_eq!(content_length(&headers).unwrap(), None);
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("12, 12"));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("12"));
        assert_eq!(content_length(&headers).unwrap(), Some(12));
        headers.append(header::CONTENT_LENGTH, HeaderValue::from_static("13"));
        assert!(content_length(&headers).is_err());
        for bad in ["+1", "-1", "", "1 2", "0x10"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static(bad));
            assert!(content_length(&headers).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn chunked_counts_only_as_the_last_coding() {
        let with = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for value in values {
                headers.append(header::TRANSFER_ENCODING, HeaderValue::from_static(value));
            }
            chunked_last(&headers)
        };
        assert_eq!(with(&[]), None);
        assert_eq!(with(&["chunked"]), Some(true));
        assert_eq!(with(&["gzip, Chunked "]), Some(true));
        assert_eq!(with(&["gzip", "chunked,"]), Some(true));
        assert_eq!(with(&["chunked, gzip"]), Some(false));
        assert_eq!(with(&["chunked", "gzip"]), Some(false));
        assert_eq!(with(&["xchunked"]), Some(false));
    }

    #[test]
    fn keep_alive_follows_version_and_connection_tokens() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, HeaderValue::from_static(value));
            headers
        };
        assert!(keeps_alive(Version::HTTP_11, &HeaderMap::new()));
        assert!(!keeps_alive(Version::HTTP_11, &with("Close")));
        assert!(!keeps_alive(Version::HTTP_11, &with("x, close")));
        assert!(!keeps_alive(Version::HTTP_10, &HeaderMap::new()));
        assert!(keeps_alive(Version::HTTP_10, &with("Keep-Alive")));
    }
}
