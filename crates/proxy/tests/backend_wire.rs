//! The router's side of HTTP/1.1 towards backends, against a backend that writes raw bytes:
//! every way a response can be framed, heads and bodies split across reads, interim
//! answers, malformed answers, when a connection is used again and when it is not, a
//! kept-alive connection closed by the backend, and an answer before the request's end.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use proxy::{BackendGroup, Router, RouterConfig, RouterHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the backend does with one request.
struct Answer {
    bytes: Vec<u8>,
    /// Write the answer a few bytes at a time, so the router reads it in pieces.
    piecewise: bool,
    /// Close the connection after the answer (or instead of one, when `bytes` is empty).
    close: bool,
    /// Read only the head: answer before the request body has arrived.
    skip_body: bool,
}

fn answer(bytes: &str) -> Answer {
    Answer {
        bytes: bytes.as_bytes().to_vec(),
        piecewise: false,
        close: false,
        skip_body: false,
    }
}

/// The script: (request line's path, index of the request on its connection) to an answer.
type Script = fn(&str, usize) -> Answer;

struct Backend {
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

/// Reads one request head (and its `Content-Length` or chunked body unless told not to);
/// returns the path, or `None` when the connection ended.
async fn read_request(
    stream: &mut TcpStream,
    buffered: &mut Vec<u8>,
    script: Script,
    index: usize,
) -> Option<(String, Answer)> {
    let head_end = loop {
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).to_lowercase();
    buffered.drain(..head_end);
    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
    let answer = script(&path, index);
    if answer.skip_body {
        return Some((path, answer));
    }
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map(|value| value.trim().parse::<usize>().unwrap());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let complete = match length {
            Some(length) => buffered.len() >= length,
            None if chunked => buffered.windows(5).any(|w| w == b"0\r\n\r\n"),
            None => true,
        };
        if complete {
            let used = match length {
                Some(length) => length,
                None if chunked => buffered.windows(5).position(|w| w == b"0\r\n\r\n").unwrap() + 5,
                None => 0,
            };
            buffered.drain(..used);
            return Some((path, answer));
        }
        let mut chunk = [0u8; 65536];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffered.extend_from_slice(&chunk[..read]);
    }
}

async fn scripted_backend(script: Script) -> Backend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            stream.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut buffered = Vec::new();
                for index in 0.. {
                    let Some((_, answer)) =
                        read_request(&mut stream, &mut buffered, script, index).await
                    else {
                        return;
                    };
                    if answer.piecewise {
                        for piece in answer.bytes.chunks(3) {
                            if stream.write_all(piece).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    } else if stream.write_all(&answer.bytes).await.is_err() {
                        return;
                    }
                    if answer.close {
                        return;
                    }
                }
            });
        }
    });
    Backend {
        address,
        connections,
    }
}

async fn router_for(backend: &Backend) -> RouterHandle {
    let mut config = RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        vec![BackendGroup::new("stable", [backend.address.to_string()])],
    );
    config.health_check = None;
    config.timeouts.request = Duration::from_secs(5);
    Router::start(config).await.unwrap()
}

type BodyClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn body_client() -> BodyClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends one request; the status, and the body or the error that cut it short.
async fn exchange(
    client: &BodyClient,
    method: Method,
    url: &str,
    body: &'static [u8],
) -> (StatusCode, Result<Bytes, String>) {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(Full::new(Bytes::from_static(body)))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("an answer within 10 s")
        .expect("the router answers");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|error| format!("{error:?}"));
    (status, body)
}

fn framings(path: &str, _index: usize) -> Answer {
    match path {
        "/length" => answer("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        "/length-in-pieces" => Answer {
            piecewise: true,
            ..answer(
                "HTTP/1.1 200 OK\r\nX-Long-Header: abcdefghijklmnop\r\nContent-Length: 11\r\n\r\nhello world",
            )
        },
        "/chunked" => Answer {
            piecewise: true,
            ..answer(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5;note=x\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: 1\r\n\r\n",
            )
        },
        "/interim" => answer(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        "/empty" => answer("HTTP/1.1 204 No Content\r\n\r\n"),
        "/not-modified" => answer("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"),
        _ => answer("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    }
}

#[tokio::test]
async fn every_framing_arrives_whole_and_the_connection_is_used_again() {
    let backend = scripted_backend(framings).await;
    let router = router_for(&backend).await;
    let base = format!("http://{}", router.local_addr());
    let client = body_client();
    for round in 0..3 {
        for (path, status, body) in [
            ("/length", 200, &b"hello"[..]),
            ("/length-in-pieces", 200, b"hello world"),
            ("/chunked", 200, b"hello world"),
            ("/interim", 200, b"ok"),
            ("/empty", 204, b""),
            ("/not-modified", 304, b""),
            ("/other", 404, b""),
        ] {
            let (got_status, got_body) =
                exchange(&client, Method::GET, &format!("{base}{path}"), b"").await;
            assert_eq!(got_status.as_u16(), status, "{path} in round {round}");
            assert_eq!(got_body.unwrap().as_ref(), body, "{path} in round {round}");
        }
    }
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        1,
        "21 sequential exchanges that all ended where their framing said share one connection"
    );
}

fn closing(path: &str, _index: usize) -> Answer {
    match path {
        "/until-close" => Answer {
            close: true,
            ..answer("HTTP/1.1 200 OK\r\n\r\nall of it")
        },
        "/connection-close" => Answer {
            close: true,
            ..answer("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        },
        "/http10" => answer("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        "/extra-bytes" => answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
        "/unknown-coding" => Answer {
            close: true,
            ..answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw")
        },
        _ => answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    }
}

#[tokio::test]
async fn a_connection_is_not_used_again_unless_the_backend_keeps_it_alive_cleanly() {
    let backend = scripted_backend(closing).await;
    let router = router_for(&backend).await;
    let base = format!("http://{}", router.local_addr());
    let client = body_client();
    let mut expected_connections = 1;
    for (path, body) in [
        ("/until-close", &b"all of it"[..]),
        ("/connection-close", b"ok"),
        ("/http10", b"ok"),
        ("/extra-bytes", b"ok"),
        ("/unknown-coding", b"raw"),
    ] {
        let (status, got) = exchange(&client, Method::GET, &format!("{base}{path}"), b"").await;
        assert_eq!(
            (status, got.unwrap().as_ref()),
            (StatusCode::OK, body),
            "{path}"
        );
        // The next request needs a new connection: the last one was not put back.
        let (status, _) = exchange(&client, Method::GET, &format!("{base}/ok"), b"").await;
        assert_eq!(status, StatusCode::OK);
        expected_connections += 1;
        assert_eq!(
            backend.connections.load(Ordering::SeqCst),
            expected_connections,
            "after {path}"
        );
    }
}

fn malformed(path: &str, _index: usize) -> Answer {
    match path {
        "/lengths-disagree" => {
            answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")
        }
        "/garbage" => answer("SMTP ready\r\n\r\n"),
        "/bad-chunk" => answer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        "/short" => Answer {
            close: true,
            ..answer("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        },
        "/silent" => Answer {
            close: true,
            ..answer("")
        },
        _ => answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    }
}

#[tokio::test]
async fn malformed_or_cut_answers_are_bad_gateway_or_a_cut_body_never_a_success() {
    let backend = scripted_backend(malformed).await;
    let router = router_for(&backend).await;
    let base = format!("http://{}", router.local_addr());
    let client = body_client();
    for path in ["/lengths-disagree", "/garbage", "/silent"] {
        let (status, _) = exchange(&client, Method::GET, &format!("{base}{path}"), b"").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{path}");
    }
    for path in ["/bad-chunk", "/short"] {
        // The head was good, the body is not: the client sees the exchange fail, with or
        // without the head (it has gone out only if a body frame came before the failure).
        let request = Request::get(format!("{base}{path}"))
            .body(Full::default())
            .unwrap();
        let outcome = match client.request(request).await {
            Ok(response) => response
                .into_body()
                .collect()
                .await
                .map(|_| ())
                .map_err(|_| ()),
            Err(_) => Err(()),
        };
        assert!(
            outcome.is_err(),
            "{path}: the client must not see a whole answer"
        );
    }
    let (status, body) = exchange(&client, Method::GET, &format!("{base}/ok"), b"").await;
    assert_eq!(
        (status, body.unwrap().as_ref()),
        (StatusCode::OK, &b"ok"[..])
    );
    let window = router
        .telemetry()
        .window("stable", Duration::from_secs(60))
        .unwrap();
    assert_eq!(window.proxy_errors, 3, "{window:?}");
}

/// Every connection answers its first request and closes without answering its second.
fn drops_second(_path: &str, index: usize) -> Answer {
    if index == 0 {
        answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    } else {
        Answer {
            close: true,
            ..answer("")
        }
    }
}

#[tokio::test]
async fn a_request_on_a_connection_the_backend_drops_is_sent_again_only_if_idempotent() {
    let backend = scripted_backend(drops_second).await;
    let router = router_for(&backend).await;
    let base = format!("http://{}", router.local_addr());
    let client = body_client();
    for _ in 0..5 {
        let (status, body) = exchange(&client, Method::GET, &format!("{base}/"), b"").await;
        assert_eq!(
            (status, body.unwrap().as_ref()),
            (StatusCode::OK, &b"ok"[..])
        );
    }
    let (status, _) = exchange(&client, Method::POST, &format!("{base}/"), b"once").await;
    assert_eq!(
        status,
        StatusCode::BAD_GATEWAY,
        "a POST the backend may have acted on is not sent twice"
    );
}

/// Answers, then closes the connection a moment later: idle in the router's pool.
fn closes_when_idle(_path: &str, _index: usize) -> Answer {
    Answer {
        close: true,
        ..answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    }
}

#[tokio::test]
async fn a_pooled_connection_the_backend_closed_is_noticed_before_use() {
    let backend = scripted_backend(closes_when_idle).await;
    let router = router_for(&backend).await;
    let base = format!("http://{}", router.local_addr());
    let client = body_client();
    for round in 0..5 {
        let (status, body) = exchange(&client, Method::POST, &format!("{base}/"), b"x").await;
        assert_eq!(
            (status, body.unwrap().as_ref()),
            (StatusCode::OK, &b"ok"[..]),
            "round {round}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 5);
}

fn early_answer(_path: &str, _index: usize) -> Answer {
    Answer {
        skip_body: true,
        close: false,
        ..answer("HTTP/1.1 413 Content Too Large\r\nContent-Length: 4\r\n\r\nbig!")
    }
}

#[tokio::test]
async fn an_answer_before_the_end_of_a_large_upload_reaches_the_client() {
    let backend = scripted_backend(early_answer).await;
    let router = router_for(&backend).await;
    let mut client = TcpStream::connect(router.local_addr()).await.unwrap();
    let size = 64 * 1024 * 1024;
    client
        .write_all(
            format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {size}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let (mut reader, mut writer) = client.into_split();
    let uploader = tokio::spawn(async move {
        let block = vec![b'u'; 64 * 1024];
        for _ in 0..size / block.len() {
            if writer.write_all(&block).await.is_err() {
                return;
            }
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(4), async {
        let mut chunk = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"big!") {
            let read = reader.read(&mut chunk).await.unwrap();
            if read == 0 {
                break;
            }
            answer.extend_from_slice(&chunk[..read]);
        }
    })
    .await;
    uploader.abort();
    assert!(read.is_ok(), "no answer while the upload was blocked");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(backend.connections.load(Ordering::SeqCst), 1);
}

fn waits_for_the_body(_path: &str, _index: usize) -> Answer {
    answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
}

#[tokio::test]
async fn a_client_that_leaves_mid_upload_is_not_counted_against_the_version() {
    let backend = scripted_backend(waits_for_the_body).await;
    let router = router_for(&backend).await;
    let mut client = TcpStream::connect(router.local_addr()).await.unwrap();
    client
        .write_all(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(client);
    let stable = router.telemetry().version_id("stable").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let totals = loop {
        let totals = router.telemetry().totals(stable);
        if totals.responses_by_class.iter().sum::<u64>() + totals.proxy_errors.iter().sum::<u64>()
            > 0
            || tokio::time::Instant::now() > deadline
        {
            break totals;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(totals.responses_by_class[3], 1, "one 4xx (499): {totals:?}");
    assert_eq!(totals.responses_by_class[4], 0, "no 5xx: {totals:?}");
    assert_eq!(totals.proxy_errors, [0; 4], "no proxy error: {totals:?}");
}
