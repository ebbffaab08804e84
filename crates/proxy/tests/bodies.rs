//! Bodies through the router, both ways: a large request body with a length, a chunked
//! request body, a large chunked response, bodiless answers (HEAD, 204), over HTTP/1.1 and
//! HTTP/2, with connections reused after each. The backend is a small echo server.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy::{BackendGroup, Router, RouterConfig};
use tokio::net::TcpListener;

/// A body of `chunks` chunks of `size` bytes with no length given: sent chunked.
struct Chunks {
    left: usize,
    size: usize,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        self.left -= 1;
        let byte = b'a' + (self.left % 26) as u8;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![byte; self.size])))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

fn expected_chunks(chunks: usize, size: usize) -> Vec<u8> {
    (0..chunks)
        .rev()
        .flat_map(|left| std::iter::repeat_n(b'a' + (left % 26) as u8, size))
        .collect()
}

type EchoBody = http_body_util::Either<Full<Bytes>, Chunks>;

/// `POST /echo` answers the request body; `GET /stream` answers 32 chunks of 64 KiB;
/// `GET /empty` answers 204; anything else 200 "ok" (HEAD without a body).
async fn echo(request: Request<Incoming>) -> Result<Response<EchoBody>, Infallible> {
    let response = match (request.method().clone(), request.uri().path()) {
        (Method::POST, "/echo") => {
            let body = request.into_body().collect().await.map(|b| b.to_bytes());
            Response::new(EchoBody::Left(Full::new(body.unwrap_or_default())))
        }
        (Method::GET, "/stream") => Response::new(EchoBody::Right(Chunks {
            left: 32,
            size: 64 * 1024,
        })),
        (_, "/empty") => {
            let mut response = Response::new(EchoBody::Left(Full::new(Bytes::new())));
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        _ => Response::new(EchoBody::Left(Full::new(Bytes::from_static(b"ok")))),
    };
    Ok(response)
}

async fn echo_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(echo))
                    .await;
            });
        }
    });
    address
}

type AnyBody = http_body_util::Either<Full<Bytes>, Chunks>;

async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, AnyBody>,
    method: Method,
    url: &str,
    body: AnyBody,
) -> (StatusCode, Bytes) {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("answered within 10 s")
        .expect("the router answers");
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_every_shape_pass_both_ways_and_connections_are_reused() {
    let backend = echo_backend().await;
    let mut config = RouterConfig::new(
        "127.0.0.1:0".parse().unwrap(),
        vec![BackendGroup::new("stable", [backend.to_string()])],
    );
    config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    config.health_check = None;
    let router = Router::start(config).await.unwrap();
    let base = format!("http://{}", router.local_addr());

    for http2 in [false, true] {
        let client = Client::builder(TokioExecutor::new())
            .http2_only(http2)
            .build_http::<AnyBody>();
        let large: Bytes = (0..1024 * 1024)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        let (status, echoed) = send(
            &client,
            Method::POST,
            &format!("{base}/echo"),
            AnyBody::Left(Full::new(large.clone())),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            echoed == large,
            "1 MiB request body came back changed (h2: {http2})"
        );

        let (status, echoed) = send(
            &client,
            Method::POST,
            &format!("{base}/echo"),
            AnyBody::Right(Chunks {
                left: 10,
                size: 100_000,
            }),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(echoed.as_ref(), expected_chunks(10, 100_000).as_slice());

        let (status, streamed) = send(
            &client,
            Method::GET,
            &format!("{base}/stream"),
            AnyBody::Left(Full::default()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(streamed.as_ref(), expected_chunks(32, 64 * 1024).as_slice());

        let (status, body) = send(
            &client,
            Method::HEAD,
            &format!("{base}/"),
            AnyBody::Left(Full::default()),
        )
        .await;
        assert_eq!((status, body.len()), (StatusCode::OK, 0));
        let (status, body) = send(
            &client,
            Method::GET,
            &format!("{base}/empty"),
            AnyBody::Left(Full::default()),
        )
        .await;
        assert_eq!((status, body.len()), (StatusCode::NO_CONTENT, 0));

        for _ in 0..50 {
            let (status, body) = send(
                &client,
                Method::GET,
                &format!("{base}/"),
                AnyBody::Left(Full::default()),
            )
            .await;
            assert_eq!((status, body.as_ref()), (StatusCode::OK, &b"ok"[..]));
        }
    }

    // Every exchange above was sequential, so one backend connection served them all
    // and is back in the pool, bodiless answers included.
    let metrics = common::get(
        &common::client(),
        &format!("http://{}/metrics", router.admin_addr().unwrap()),
        &[],
    )
    .await
    .1;
    let idle_line = metrics
        .lines()
        .find(|line| line.starts_with("golive_router_backend_idle_connections{"))
        .expect("idle connections are exported");
    assert!(idle_line.ends_with(" 1"), "{idle_line}");
    router.shutdown().await;
}
