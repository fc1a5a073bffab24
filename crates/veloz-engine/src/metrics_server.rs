//! The plain-text metrics socket, polled by the control thread; it also carries the
//! operator interface (`/admin/...`, [`crate::admin`]).
//!
//! Two ways in, one answer: an HTTP client (`curl http://ADDR/metrics`, a Prometheus
//! server) sends a request and gets an HTTP/1.0 200 response with the exposition text; a raw
//! client (`nc ADDR PORT`) that sends nothing gets the bare text after [`RAW_AFTER`]. Either
//! way the connection is closed after the answer. A request under `/admin/` goes to the
//! admin handler, which answers at once or later (when the shards have acted:
//! [`MetricsServer::complete`]). Each connection has a deadline, so a client that stalls
//! cannot hold the control thread: it is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A connection that has sent nothing for this long gets the raw text.
pub const RAW_AFTER: Duration = Duration::from_millis(150);
/// A connection is dropped if its answer is not written by then.
const DEADLINE: Duration = Duration::from_secs(5);
/// Request bytes read at most (a request line and a few headers).
const MAX_REQUEST: usize = 8 * 1024;

#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    since: Instant,
    request: Vec<u8>,
    /// The answer, once decided, and how much of it is written.
    answer: Option<(Vec<u8>, usize)>,
    /// An admin request the shards are working on: its id.
    waiting: Option<u64>,
}

/// The admin handler's answer to a request under `/admin/`.
#[derive(Debug)]
pub enum Reply {
    /// The whole HTTP response, now.
    Now(Vec<u8>),
    /// The shards are acting on it: [`MetricsServer::complete`] with this id answers it.
    Later(u64),
}

/// The listening socket and its open connections.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    conns: Vec<Conn>,
}

impl MetricsServer {
    /// Take a bound listener (bound by the main thread, so errors surface at start).
    pub fn new(listener: TcpListener) -> std::io::Result<MetricsServer> {
        listener.set_nonblocking(true)?;
        Ok(MetricsServer {
            listener,
            conns: Vec::new(),
        })
    }

    /// Answer the admin request `id` (given out as [`Reply::Later`]) with `response`.
    /// Returns `false` when its connection is gone (closed, or past its deadline).
    pub fn complete(&mut self, id: u64, response: Vec<u8>) -> bool {
        match self.conns.iter_mut().find(|c| c.waiting == Some(id)) {
            Some(c) => {
                c.waiting = None;
                c.answer = Some((response, 0));
                true
            }
            None => false,
        }
    }

    /// Accept, read, answer. `render` is called only when some connection needs the
    /// metrics text, `admin` for a request under `/admin/`. Returns `true` if anything
    /// happened.
    pub fn poll(
        &mut self,
        mut render: impl FnMut() -> String,
        mut admin: impl FnMut(&[u8]) -> Reply,
    ) -> bool {
        let mut busy = false;
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.conns.push(Conn {
                    stream,
                    since: Instant::now(),
                    request: Vec::new(),
                    answer: None,
                    waiting: None,
                });
                busy = true;
            }
        }
        let mut text: Option<String> = None;
        self.conns.retain_mut(|c| {
            if c.since.elapsed() > DEADLINE {
                return false;
            }
            if c.answer.is_none() && c.waiting.is_none() {
                let mut buf = [0u8; 1024];
                loop {
                    match c.stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            busy = true;
                            c.request.extend_from_slice(&buf[..n]);
                            if c.request.len() > MAX_REQUEST {
                                return false;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(_) => return false,
                    }
                }
                let http = c.request.windows(4).any(|w| w == b"\r\n\r\n")
                    || c.request.windows(2).any(|w| w == b"\n\n");
                let raw = c.request.is_empty() && c.since.elapsed() >= RAW_AFTER;
                if http && is_admin(&c.request) {
                    match admin(&c.request) {
                        Reply::Now(bytes) => c.answer = Some((bytes, 0)),
                        Reply::Later(id) => c.waiting = Some(id),
                    }
                    busy = true;
                } else if http || raw || (!c.request.is_empty() && !may_be_http(&c.request)) {
                    let body = text.get_or_insert_with(&mut render).clone();
                    c.answer = Some((answer(&c.request, body), 0));
                }
            }
            if let Some((bytes, written)) = &mut c.answer {
                loop {
                    match c.stream.write(&bytes[*written..]) {
                        Ok(0) => return false,
                        Ok(n) => {
                            busy = true;
                            *written += n;
                            if *written == bytes.len() {
                                let _ = c.stream.shutdown(std::net::Shutdown::Both);
                                return false;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                        Err(_) => return false,
                    }
                }
            }
            true
        });
        busy
    }
}

/// What has arrived so far is, or may still become, an HTTP request of ours: it starts with
/// `GET `, `HEAD ` or `POST `, or is a beginning of one (a client may write the method in
/// pieces: `write!` on a socket sends each formatted piece as its own segment).
fn may_be_http(request: &[u8]) -> bool {
    [&b"GET "[..], b"HEAD ", b"POST "].iter().any(|m| {
        if request.len() >= m.len() {
            request.starts_with(m)
        } else {
            m.starts_with(request)
        }
    })
}

/// The request line asks for a path under `/admin/`.
fn is_admin(request: &[u8]) -> bool {
    let line = request.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let mut parts = line.split(|&b| b == b' ');
    parts.next();
    parts
        .next()
        .is_some_and(|path| path.starts_with(b"/admin/"))
}

/// An HTTP/1.0 response with a plain-text or JSON body.
pub fn response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.0 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The bytes to send for `request` (empty = raw client).
fn answer(request: &[u8], body: String) -> Vec<u8> {
    let line = request.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next()) {
        (None, _) => body.into_bytes(),
        (Some("GET" | "HEAD"), Some(path)) if path == "/metrics" || path == "/" => {
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let mut out = head.into_bytes();
            if line.starts_with("GET") {
                out.extend_from_slice(body.as_bytes());
            }
            out
        }
        (Some("GET" | "HEAD"), Some(path)) => {
            let msg = format!("no such path {path:?}: the metrics are at /metrics\n");
            format!(
                "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )
            .into_bytes()
        }
        _ => {
            let msg = "send `GET /metrics HTTP/1.0`, or nothing for the raw text\n";
            format!(
                "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )
            .into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_until_closed(server: &mut MetricsServer, mut client: TcpStream) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            server.poll(
                || "veloz_up 1\n".to_string(),
                |_| Reply::Now(response("200 OK", "text/plain", "admin\n")),
            );
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "no answer");
            std::thread::sleep(Duration::from_millis(2));
        }
        String::from_utf8(got).unwrap()
    }

    #[test]
    fn http_raw_and_bad_requests_get_their_answers() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = MetricsServer::new(listener).unwrap();

        let mut http = TcpStream::connect(addr).unwrap();
        http.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let text = serve_until_closed(&mut server, http);
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(text.ends_with("\r\n\r\nveloz_up 1\n"), "{text}");

        let raw = TcpStream::connect(addr).unwrap();
        assert_eq!(serve_until_closed(&mut server, raw), "veloz_up 1\n");

        let mut other = TcpStream::connect(addr).unwrap();
        other.write_all(b"GET /other HTTP/1.0\r\n\r\n").unwrap();
        assert!(serve_until_closed(&mut server, other).starts_with("HTTP/1.0 404"));

        let mut junk = TcpStream::connect(addr).unwrap();
        junk.write_all(b"hello\n").unwrap();
        assert!(serve_until_closed(&mut server, junk).starts_with("HTTP/1.0 400"));

        // A POST under /admin/ goes to the admin handler, also when it arrives in pieces,
        // even one that splits the method.
        let mut admin = TcpStream::connect(addr).unwrap();
        admin.write_all(b"POST").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        server.poll(
            || unreachable!("a method cut short is not junk"),
            |_| unreachable!("incomplete"),
        );
        admin.write_all(b" /admin/halt?sym").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        server.poll(
            || unreachable!("no metrics asked"),
            |_| unreachable!("incomplete"),
        );
        admin.write_all(b"bol=1 HTTP/1.0\r\n\r\n").unwrap();
        assert!(serve_until_closed(&mut server, admin).ends_with("\r\n\r\nadmin\n"));
    }
}
