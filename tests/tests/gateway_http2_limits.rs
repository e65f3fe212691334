//! HTTP/2 clients that attack the front door, each written frame by frame
//! on a raw socket (h2c with prior knowledge): rapid reset
//! (CVE-2023-44487), a CONTINUATION flood, a reader that never opens its
//! window, an idle connection. Each is cut off while an ordinary HTTP/2
//! client on the same gateway keeps being answered.

use e2e::{one_route_config, Backend, Gateway};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ENHANCE_YOUR_CALM: u32 = 0xb;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    out.extend([kind, flags]);
    out.extend(stream.to_be_bytes());
    out.extend(payload);
    out
}

/// HPACK for `GET {path}` on `localhost` (static-table names, literal
/// values without indexing; `path` shorter than 127 bytes).
fn get(path: &str) -> Vec<u8> {
    let mut block = vec![0x82, 0x86]; // :method GET, :scheme http
    for (name_index, value) in [(4u8, path), (1, "localhost")] {
        block.extend([name_index, value.len() as u8]);
        block.extend(value.as_bytes());
    }
    block
}

/// A connection that has sent the preface and `settings` (id, value pairs).
async fn h2c(gateway: SocketAddr, settings: &[(u16, u32)]) -> TcpStream {
    let mut s = TcpStream::connect(gateway).await.unwrap();
    let payload: Vec<u8> = settings
        .iter()
        .flat_map(|(id, v)| id.to_be_bytes().into_iter().chain(v.to_be_bytes()))
        .collect();
    s.write_all(PREFACE).await.unwrap();
    s.write_all(&frame(SETTINGS, 0, 0, &payload)).await.unwrap();
    s
}

struct Frame {
    kind: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// Frames the gateway sent until it closed the connection, `until` held
/// for one of them, or `limit` passed; with how long that took (`None`:
/// the limit passed).
async fn frames_until(
    mut read: impl AsyncReadExt + Unpin,
    limit: Duration,
    until: impl Fn(&Frame) -> bool,
) -> (Vec<Frame>, Option<Duration>) {
    let started = Instant::now();
    let (mut bytes, mut frames) = (Vec::new(), Vec::new());
    let ended = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 16384];
        while let Ok(n @ 1..) = read.read(&mut buf).await {
            bytes.extend_from_slice(&buf[..n]);
            while bytes.len() >= 9 {
                let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
                if bytes.len() < 9 + len {
                    break;
                }
                let frame = Frame {
                    kind: bytes[3],
                    stream: u32::from_be_bytes(bytes[5..9].try_into().unwrap()) & 0x7fff_ffff,
                    payload: bytes[9..9 + len].to_vec(),
                };
                bytes.drain(..9 + len);
                let done = until(&frame);
                frames.push(frame);
                if done {
                    return;
                }
            }
        }
    })
    .await;
    (frames, ended.ok().map(|_| started.elapsed()))
}

async fn frames_until_closed(read: impl AsyncReadExt + Unpin, limit: Duration) -> Vec<Frame> {
    frames_until(read, limit, |_| false).await.0
}

fn goaway_code(frames: &[Frame]) -> Option<u32> {
    let f = frames.iter().find(|f| f.kind == GOAWAY)?;
    Some(u32::from_be_bytes(f.payload[4..8].try_into().unwrap()))
}

/// An ordinary HTTP/2 client asking every 20 ms until stopped: how many
/// answers were 200 and how many were not.
struct Bystander {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<(u32, u32)>,
}

impl Bystander {
    fn start(url: String) -> Bystander {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            let client = e2e::h2c_client();
            let (mut ok, mut failed) = (0, 0);
            while !*stopped.borrow() {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    _ => failed += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, failed)
        });
        Bystander { stop, task }
    }

    /// After 300 ms more of asking (the attack is over by then).
    async fn finish(self) -> (u32, u32) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.stop.send(true).unwrap();
        self.task.await.unwrap()
    }
}

fn gateway(blue: &Backend, green: &Backend, http2: &str) -> Gateway {
    let config = one_route_config(&[blue], &[green], "");
    Gateway::start(&format!("http2: {{{http2}}}\n{config}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_limits_are_announced_in_the_gateways_settings() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let gw = gateway(
        &blue,
        &green,
        "max_concurrent_streams: 7, max_header_list_size: 8KiB, initial_stream_window: 128KiB, idle_timeout: 1s",
    );
    let s = h2c(gw.proxy, &[]).await;
    let (frames, closed) = frames_until(s, Duration::from_secs(5), |_| false).await;
    let settings = frames
        .iter()
        .find(|f| f.kind == SETTINGS)
        .expect("SETTINGS");
    let values: Vec<(u16, u32)> = settings
        .payload
        .chunks(6)
        .map(|c| {
            let id = u16::from_be_bytes([c[0], c[1]]);
            (id, u32::from_be_bytes(c[2..6].try_into().unwrap()))
        })
        .collect();
    for expected in [(0x3, 7), (0x4, 128 * 1024), (0x6, 8 * 1024)] {
        assert!(values.contains(&expected), "{expected:?} in {values:?}");
    }
    // idle_timeout: a connection without a stream is closed.
    let closed = closed.expect("the idle connection closed");
    assert!(
        closed > Duration::from_millis(800),
        "closed after {closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rapid_reset_is_cut_off_without_reaching_the_upstream() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let gw = gateway(&blue, &green, "max_pending_resets: 20");
    let bystander = Bystander::start(gw.url("/"));
    let before = blue.stats().await["requests"].as_u64().unwrap();

    let s = h2c(gw.proxy, &[]).await;
    let (read, mut write) = s.into_split();
    let reader = tokio::spawn(frames_until_closed(read, Duration::from_secs(10)));
    let mut flood = Vec::new();
    for i in 0..5_000u32 {
        let stream = 2 * i + 1;
        flood.extend(frame(HEADERS, END_HEADERS | END_STREAM, stream, &get("/")));
        flood.extend(frame(RST_STREAM, 0, stream, &8u32.to_be_bytes())); // CANCEL
    }
    let started = Instant::now();
    let _ = write.write_all(&flood).await; // the gateway may close mid-way
    let frames = reader.await.unwrap();
    let cut_after = started.elapsed();

    assert_eq!(
        goaway_code(&frames),
        Some(ENHANCE_YOUR_CALM),
        "GOAWAY ENHANCE_YOUR_CALM"
    );
    assert!(
        cut_after < Duration::from_secs(5),
        "cut off after {cut_after:?}"
    );
    let (ok, failed) = bystander.finish().await;
    let reached = blue.stats().await["requests"].as_u64().unwrap() - before;
    println!("rapid reset: cut after {cut_after:?}; {reached} requests reached blue (bystander {ok}); bystander {ok} ok, {failed} failed");
    assert!(
        ok >= 3 && failed == 0,
        "bystander: {ok} ok, {failed} failed"
    );
    assert!(
        reached < u64::from(ok) + 100,
        "{reached} requests reached the upstream for 5,000 reset streams"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_continuation_flood_is_cut_off() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let gw = gateway(&blue, &green, "max_header_list_size: 16KiB");
    let bystander = Bystander::start(gw.url("/"));

    let s = h2c(gw.proxy, &[]).await;
    let (read, mut write) = s.into_split();
    let reader = tokio::spawn(frames_until_closed(read, Duration::from_secs(10)));
    // HEADERS without END_HEADERS, then CONTINUATION frames that never end
    // the head: 100,000 headers of 100 bytes (~11 MB) if nothing stops it.
    let mut junk = vec![0x00, 6];
    junk.extend(b"x-junk");
    junk.push(100);
    junk.extend([b'a'; 100]);
    let started = Instant::now();
    let _ = write
        .write_all(&frame(HEADERS, END_STREAM, 1, &get("/")))
        .await;
    let mut sent = 0usize;
    for _ in 0..1_000 {
        let batch: Vec<u8> = (0..100)
            .flat_map(|_| frame(CONTINUATION, 0, 1, &junk))
            .collect();
        if write.write_all(&batch).await.is_err() {
            break;
        }
        sent += batch.len();
    }
    let frames = reader.await.unwrap();
    let (ok, failed) = bystander.finish().await;
    println!(
        "CONTINUATION flood: {sent} bytes taken before the cut, after {:?}",
        started.elapsed()
    );
    assert_eq!(
        goaway_code(&frames),
        Some(ENHANCE_YOUR_CALM),
        "GOAWAY ENHANCE_YOUR_CALM"
    );
    assert!(sent < 4_000_000, "{sent} bytes of headers were taken");
    assert!(
        ok >= 3 && failed == 0,
        "bystander: {ok} ok, {failed} failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reader_that_never_opens_its_window_is_cut_off() {
    let (blue, green) = (Backend::start("blue"), Backend::start("green"));
    let gw = gateway(&blue, &green, "send_timeout: 1s");
    let bystander = Bystander::start(gw.url("/"));

    // SETTINGS_INITIAL_WINDOW_SIZE 0: not a byte of any response body may
    // be sent until the client opens the window, which it never does.
    let s = h2c(gw.proxy, &[(0x4, 0)]).await;
    let (read, mut write) = s.into_split();
    let reset_or_closed = |f: &Frame| (f.kind == RST_STREAM && f.stream == 1) || f.kind == GOAWAY;
    let reader = tokio::spawn(frames_until(read, Duration::from_secs(8), reset_or_closed));
    let path = "/stream?chunks=1000&interval_ms=10";
    write
        .write_all(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &get(path)))
        .await
        .unwrap();
    let (frames, cut) = reader.await.unwrap();
    let (ok, failed) = bystander.finish().await;
    println!("stalled reader: {} frames, cut after {cut:?}", frames.len());
    let cut = cut.expect("stream 1 reset (or the connection closed) by send_timeout");
    assert!(
        cut >= Duration::from_millis(900),
        "cut after {cut:?}, before send_timeout"
    );
    assert!(
        ok >= 3 && failed == 0,
        "bystander: {ok} ok, {failed} failed"
    );
}

#[test]
fn bad_limits_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.yaml");
    std::fs::write(
        &path,
        "http2: {max_concurrent_streams: 0, initial_stream_window: 1KiB}\n\
         listeners: [{address: \"127.0.0.1:1\"}]\n\
         routes:\n  - name: web\n    blue: {endpoints: [\"127.0.0.1:2\"]}\n    green: {endpoints: [\"127.0.0.1:3\"]}\n",
    )
    .unwrap();
    let out = std::process::Command::new(e2e::bin("gateway"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("http2.max_concurrent_streams"), "{stderr}");
    assert!(stderr.contains("http2.initial_stream_window"), "{stderr}");
}
