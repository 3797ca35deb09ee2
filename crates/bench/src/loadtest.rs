//! `tgwatch bench websocket`: how many `/ws` clients one instance holds with the status tick,
//! how late the tick reaches them, and what each costs the server.
//!
//! The service runs as a child process (`tgwatch run` on a scripted Telegram and a fresh SQLite
//! file), so that its resident memory and CPU are its own; this process plays the clients over
//! loopback with a minimal WebSocket client (upgrade, unmasked server frames, masked pongs).
//! Client and server share the machine's cores: the figures are a floor for a server alone.
//!
//! Latency: every status frame carries `at`, the real time the server made it (just before it
//! went into the broadcast channel); a client's latency is its arrival time minus `at`.

use std::{
    fmt,
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::Semaphore,
};

use crate::procstat;

const TOKEN: &str = "bench-admin-token-0123456789";
/// Handshakes in flight at once while connecting.
const CONNECTING_AT_ONCE: usize = 200;
/// Latency histogram: 0.1 ms buckets up to 10 s.
const BUCKET_MICROS: u64 = 100;
const BUCKETS: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    #[error("the service did not start: {0}")]
    NotReady(String),
    #[error("no client could connect: {0}")]
    NoClients(String),
}

pub struct LoadReport {
    pub clients_asked: usize,
    pub clients_connected: usize,
    pub connect_failures: usize,
    pub first_failure: Option<String>,
    pub connect_seconds: f64,
    pub interval_ms: u64,
    pub window_seconds: u64,
    pub frames_expected: u64,
    pub frames_received: u64,
    pub lagged_notices: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub server_rss_idle: u64,
    pub server_rss_loaded: u64,
    pub server_cpu_percent: f64,
    pub clients_cpu_percent: f64,
    pub fd_limit: u64,
    /// The machine's 1-minute load average at the end (other work on the machine shows here).
    pub load_average: f64,
}

impl LoadReport {
    pub fn bytes_per_client(&self) -> f64 {
        self.server_rss_loaded.saturating_sub(self.server_rss_idle) as f64
            / self.clients_connected.max(1) as f64
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "websocket benchmark: {} clients asked, {} connected in {:.1} s ({} failed{}); open-file limit {}",
            self.clients_asked,
            self.clients_connected,
            self.connect_seconds,
            self.connect_failures,
            self.first_failure
                .as_deref()
                .map(|e| format!(", first: {e}"))
                .unwrap_or_default(),
            self.fd_limit
        )?;
        writeln!(
            f,
            "  status every {} ms, measured for {} s: {} of {} frames arrived ({:.2} %), {} lag notices",
            self.interval_ms,
            self.window_seconds,
            self.frames_received,
            self.frames_expected,
            self.frames_received as f64 * 100.0 / self.frames_expected.max(1) as f64,
            self.lagged_notices
        )?;
        writeln!(
            f,
            "  broadcast latency (made -> received): p50 {:.1} ms, p99 {:.1} ms (goal < 100), max {:.1} ms",
            self.p50_ms, self.p99_ms, self.max_ms
        )?;
        writeln!(
            f,
            "  server memory: {:.1} MiB idle, {:.1} MiB with the clients: {:.0} bytes per client (goal < 16384)",
            self.server_rss_idle as f64 / 1048576.0,
            self.server_rss_loaded as f64 / 1048576.0,
            self.bytes_per_client()
        )?;
        write!(
            f,
            "  CPU over the window (of one core): server {:.0} %, clients {:.0} %; load average {:.2} on {} cores",
            self.server_cpu_percent,
            self.clients_cpu_percent,
            self.load_average,
            std::thread::available_parallelism().map_or(0, usize::from)
        )
    }
}

/// Raises this process's open-file limit to its hard limit (the child inherits it).
fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let Some(maximum) = limit.maximum
        && limit.current != Some(maximum)
    {
        let raised = Rlimit {
            current: Some(maximum),
            maximum: Some(maximum),
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, "cannot raise the open-file limit");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The child service; killed when dropped.
struct Service {
    child: Child,
    dir: PathBuf,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Service {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

fn free_port() -> Result<u16, LoadError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| LoadError::Io("choosing a port", e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| LoadError::Io("choosing a port", e))
}

fn start_service(clients: usize, interval_ms: u64) -> Result<(Service, SocketAddr), LoadError> {
    let dir = std::env::temp_dir().join(format!(
        "tgwatch-bench-ws-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| LoadError::Io("creating a directory", e))?;
    let port = free_port()?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut scenario = String::new();
    let mut tracked = String::new();
    for n in 1..=20 {
        scenario.push_str(&format!(
            "[[users]]\nid = {}\nusername = \"bench_user{n}\"\nonline = [[{}, {}]]\nrepeat_every = 3600\n\n",
            5000 + n,
            n * 60,
            n * 60 + 900
        ));
        tracked.push_str(&format!(
            "[[tracked_users]]\nusername = \"bench_user{n}\"\n\n"
        ));
    }
    let scenario_path = dir.join("scenario.toml");
    std::fs::write(&scenario_path, scenario)
        .map_err(|e| LoadError::Io("writing the scenario", e))?;
    let config = format!(
        "[database]\nurl = \"sqlite://{db}?mode=rwc\"\n\n[http]\nbind = \"{address}\"\nadmin_token = \"{TOKEN}\"\n\n\
         [telegram]\nscenario = \"{scenario}\"\nclock_speed = 60.0\n\n\
         [live]\nstatus_interval_ms = {interval_ms}\nmax_clients = {max}\n\n\
         [[accounts]]\nlabel = \"main\"\n\n{tracked}",
        db = dir.join("bench.db").display(),
        scenario = scenario_path.display(),
        max = clients + 100,
    );
    let config_path = dir.join("config.toml");
    std::fs::write(&config_path, config).map_err(|e| LoadError::Io("writing the config", e))?;
    let log = std::fs::File::create(dir.join("service.log"))
        .map_err(|e| LoadError::Io("creating the service log", e))?;
    let exe = std::env::current_exe().map_err(|e| LoadError::Io("finding tgwatch", e))?;
    let child = Command::new(exe)
        .arg("run")
        .arg("--config")
        .arg(&config_path)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .map_err(|e| LoadError::Io("starting the service", e))?;
    Ok((Service { child, dir }, address))
}

async fn wait_ready(service: &mut Service, address: SocketAddr) -> Result<(), LoadError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::Client::new();
    loop {
        if let Ok(Some(status)) = service.child.try_wait() {
            let log = std::fs::read_to_string(service.dir.join("service.log")).unwrap_or_default();
            return Err(LoadError::NotReady(format!("it exited ({status}):\n{log}")));
        }
        if let Ok(response) = client
            .get(format!("http://{address}/api/health"))
            .send()
            .await
            && response.status().is_success()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(LoadError::NotReady(
                "no answer from /api/health in 60 s".to_owned(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What every client reports into.
struct Shared {
    measuring: AtomicBool,
    histogram: Vec<AtomicU64>,
    frames: AtomicU64,
    lagged: AtomicU64,
    max_micros: AtomicU64,
    connected: AtomicUsize,
    failed: AtomicUsize,
    first_failure: std::sync::Mutex<Option<String>>,
}

impl Shared {
    /// Nothing counted yet, not measuring.
    fn new() -> Shared {
        Shared {
            measuring: AtomicBool::new(false),
            histogram: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            frames: AtomicU64::new(0),
            lagged: AtomicU64::new(0),
            max_micros: AtomicU64::new(0),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            first_failure: std::sync::Mutex::new(None),
        }
    }

    fn record(&self, micros: u64) {
        let index = usize::try_from(micros / BUCKET_MICROS)
            .unwrap_or(BUCKETS - 1)
            .min(BUCKETS - 1);
        if let Some(bucket) = self.histogram.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    fn percentile_ms(&self, fraction: f64) -> f64 {
        let total: u64 = self
            .histogram
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .sum();
        if total == 0 {
            return f64::NAN;
        }
        let wanted = (total as f64 * fraction).ceil() as u64;
        let mut seen = 0;
        for (index, bucket) in self.histogram.iter().enumerate() {
            seen += bucket.load(Ordering::Relaxed);
            if seen >= wanted {
                // The bucket's upper edge.
                return (index as u64 + 1) as f64 * BUCKET_MICROS as f64 / 1000.0;
            }
        }
        f64::NAN
    }

    fn fail(&self, error: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(error);
        }
    }
}

/// Runs the benchmark: `clients` connections, measured for `seconds` after all are in.
pub async fn run(clients: usize, seconds: u64, interval_ms: u64) -> Result<LoadReport, LoadError> {
    let fd_limit = raise_fd_limit();
    let (mut service, address) = start_service(clients, interval_ms)?;
    wait_ready(&mut service, address).await?;
    let pid = service.pid().to_string();
    // Let start-up settle (tracked users resolved, first polls written).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server_rss_idle = procstat::resident_bytes(&pid);

    let shared = Arc::new(Shared::new());
    let gate = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    let connect_started = Instant::now();
    for _ in 0..clients {
        tasks.spawn(client(address, Arc::clone(&shared), Arc::clone(&gate)));
    }
    // All in (or failed), or a minute at most.
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared.connected.load(Ordering::Relaxed) + shared.failed.load(Ordering::Relaxed) < clients
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_seconds = connect_started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    if connected == 0 {
        let first = shared
            .first_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .unwrap_or_default();
        return Err(LoadError::NoClients(first));
    }
    // Two ticks to settle, then the window.
    tokio::time::sleep(Duration::from_millis(interval_ms * 2 + 500)).await;
    let server_ticks = procstat::cpu_ticks(&pid);
    let own_ticks = procstat::cpu_ticks("self");
    let window_started = Instant::now();
    shared.measuring.store(true, Ordering::Release);
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    shared.measuring.store(false, Ordering::Release);
    let window = window_started.elapsed().as_secs_f64();
    let server_cpu_percent = procstat::cpu_ticks(&pid).saturating_sub(server_ticks) as f64
        / procstat::TICKS_PER_SECOND
        / window
        * 100.0;
    let clients_cpu_percent = procstat::cpu_ticks("self").saturating_sub(own_ticks) as f64
        / procstat::TICKS_PER_SECOND
        / window
        * 100.0;
    let server_rss_loaded = procstat::resident_bytes(&pid);
    tasks.abort_all();
    drop(service);

    let ticks = (seconds * 1000) / interval_ms.max(1);
    Ok(LoadReport {
        clients_asked: clients,
        clients_connected: connected,
        connect_failures: shared.failed.load(Ordering::Relaxed),
        first_failure: shared
            .first_failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        connect_seconds,
        interval_ms,
        window_seconds: seconds,
        frames_expected: ticks * connected as u64,
        frames_received: shared.frames.load(Ordering::Relaxed),
        lagged_notices: shared.lagged.load(Ordering::Relaxed),
        p50_ms: shared.percentile_ms(0.50),
        p99_ms: shared.percentile_ms(0.99),
        max_ms: shared.max_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        server_rss_idle,
        server_rss_loaded,
        server_cpu_percent,
        clients_cpu_percent,
        fd_limit,
        load_average: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse().ok())
            .unwrap_or(f64::NAN),
    })
}

/// One client: the upgrade (admin token), then frames until the benchmark ends.
async fn client(address: SocketAddr, shared: Arc<Shared>, gate: Arc<Semaphore>) {
    let permit = gate.acquire_owned().await;
    let mut stream = match handshake(address).await {
        Ok(stream) => stream,
        Err(error) => {
            shared.fail(error);
            return;
        }
    };
    drop(permit);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    let mut buffer: Vec<u8> = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        let read = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        buffer.extend_from_slice(chunk.get(..read).unwrap_or_default());
        while let Some((opcode, start, end)) = next_frame(&buffer) {
            let payload = buffer.get(start..end).unwrap_or_default();
            match opcode {
                0x1 => on_text(&shared, payload),
                0x9 => {
                    let pong = masked_frame(0xA, payload);
                    if stream.write_all(&pong).await.is_err() {
                        return;
                    }
                }
                0x8 => return,
                _ => {}
            }
            buffer.drain(..end);
        }
    }
}

fn on_text(shared: &Shared, payload: &[u8]) {
    if !shared.measuring.load(Ordering::Acquire) {
        return;
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return;
    };
    if text.contains("\"code\":\"lagged\"") {
        shared.lagged.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if !text.contains("\"type\":\"status\"") {
        return;
    }
    let now = Utc::now();
    let Some(at) = text
        .split_once("\"at\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .and_then(|(at, _)| DateTime::parse_from_rfc3339(at).ok())
    else {
        return;
    };
    let micros = (now - at.with_timezone(&Utc))
        .num_microseconds()
        .unwrap_or(i64::MAX)
        .max(0);
    shared.record(u64::try_from(micros).unwrap_or(u64::MAX));
}

async fn handshake(address: SocketAddr) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(address)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET /ws?user_id=0 HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {TOKEN}\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send the upgrade: {e}"))?;
    // Read the answer's head byte by byte: nothing after it may be swallowed.
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            Ok(_) => return Err("the server closed during the upgrade".to_owned()),
            Err(e) => return Err(format!("read the upgrade: {e}")),
        }
        if head.len() > 8192 {
            return Err("the upgrade's answer is too long".to_owned());
        }
    }
    if !head.starts_with(b"HTTP/1.1 101") {
        let line = String::from_utf8_lossy(&head);
        return Err(format!(
            "upgrade refused: {}",
            line.lines().next().unwrap_or_default()
        ));
    }
    Ok(stream)
}

/// The next complete frame in `buffer`: opcode, payload start, payload end (= frame end).
/// Server frames are not masked.
fn next_frame(buffer: &[u8]) -> Option<(u8, usize, usize)> {
    let first = *buffer.first()?;
    let second = *buffer.get(1)?;
    let opcode = first & 0x0f;
    let masked = second & 0x80 != 0;
    let (length, mut header) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buffer.get(2)?, *buffer.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buffer.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes), 10)
        }
        short => (u64::from(short), 2),
    };
    if masked {
        header += 4;
    }
    let end = header + usize::try_from(length).ok()?;
    (buffer.len() >= end).then_some((opcode, header, end))
}

/// A client frame (clients must mask; a zero key leaves the payload as it is).
fn masked_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let payload = payload.get(..payload.len().min(125)).unwrap_or_default();
    let mut frame = Vec::with_capacity(payload.len() + 6);
    frame.push(0x80 | opcode);
    frame.push(0x80 | payload.len() as u8);
    frame.extend_from_slice(&[0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_from_the_stream() {
        // A short text frame, a 126-length frame, and half of a third.
        let mut stream = vec![0x81, 3, b'a', b'b', b'c'];
        stream.extend_from_slice(&[0x81, 126, 0, 200]);
        stream.extend(std::iter::repeat_n(b'x', 200));
        stream.extend_from_slice(&[0x89, 4, 1]);
        assert_eq!(next_frame(&stream), Some((1, 2, 5)));
        let rest = &stream[5..];
        assert_eq!(next_frame(rest), Some((1, 4, 204)));
        assert_eq!(next_frame(&rest[204..]), None);
        assert_eq!(
            masked_frame(0xA, b"hi"),
            vec![0x8A, 0x82, 0, 0, 0, 0, b'h', b'i']
        );
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let shared = Shared::new();
        shared.measuring.store(true, Ordering::Relaxed);
        for micros in 1..=1000u64 {
            shared.record(micros * 100);
        }
        assert!((shared.percentile_ms(0.5) - 50.1).abs() < 0.2);
        assert!((shared.percentile_ms(0.99) - 99.1).abs() < 0.2);
        on_text(
            &shared,
            br#"{"at":"2000-01-01T00:00:00.000000Z","data":{},"type":"status"}"#,
        );
        assert_eq!(shared.frames.load(Ordering::Relaxed), 1001);
    }
}
