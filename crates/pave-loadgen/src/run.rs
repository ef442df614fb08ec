//! Drives the load: one keep-alive connection per worker, paced by a thread (open loop) or
//! back to back (closed loop), each worker keeping its own tally, merged at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::target::Target;

/// How a run sends its requests.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Requests per second for an open-loop run; `None` for closed loop.
    pub rate: Option<f64>,
    pub connections: usize,
    pub duration: Duration,
    /// The first part of `duration` whose requests are not counted.
    pub warmup: Duration,
    /// How long a request may take from its intended send time to its last body byte.
    pub timeout: Duration,
}

/// The instants that bound a run, fixed once every connection is open.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    end: Instant,
    timeout: Duration,
}

/// What the counted requests (those intended at or after the warmup) came to.
#[derive(Clone)]
pub struct Tally {
    /// Microseconds from each answered request's intended send time to its last body byte.
    pub latency: Histogram<u64>,
    /// Responses by status class: 2xx, 3xx, 4xx, 5xx.
    pub classes: [u64; 4],
    /// Responses with a status outside 200–599.
    pub other_status: u64,
    /// Failed connects, resets, malformed responses; not timeouts.
    pub broken: u64,
    pub timeouts: u64,
    /// Response body bytes.
    pub bytes: u64,
    pub requests: u64,
    /// Wall time from the end of the warmup to the last counted answer, or to the scheduled
    /// end if that is later.
    pub elapsed: Duration,
    last_done: Option<Instant>,
}

impl Tally {
    fn new(timeout: Duration) -> Self {
        let high = u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX).max(2);
        Self {
            latency: Histogram::new_with_bounds(1, high, 3).expect("1 <= high/2 and 3 significant figures are valid"),
            classes: [0; 4],
            other_status: 0,
            broken: 0,
            timeouts: 0,
            bytes: 0,
            requests: 0,
            elapsed: Duration::ZERO,
            last_done: None,
        }
    }

    fn merge(&mut self, other: &Tally) {
        self.latency.add(&other.latency).expect("histograms with the same bounds add");
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        self.other_status += other.other_status;
        self.broken += other.broken;
        self.timeouts += other.timeouts;
        self.bytes += other.bytes;
        self.requests += other.requests;
        self.last_done = self.last_done.max(other.last_done);
    }

    pub fn responses(&self) -> u64 {
        self.classes.iter().sum::<u64>() + self.other_status
    }

    /// Transport errors, timeouts included.
    pub fn transport_errors(&self) -> u64 {
        self.broken + self.timeouts
    }

    /// Requests that got no 2xx or 3xx answer.
    pub fn failed(&self) -> u64 {
        self.transport_errors() + self.classes[2] + self.classes[3] + self.other_status
    }
}

/// A keep-alive HTTP/1.1 connection; dropping it closes the socket even if a request on it
/// is still waiting for an answer.
struct Connection {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    io: tokio::task::JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.io.abort();
    }
}

/// Opens a connection to the first address that accepts one.
async fn connect(target: &Target) -> Result<Connection> {
    let mut last = None;
    for addr in &target.addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                let (sender, conn) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
                let io = tokio::spawn(async move {
                    let _ = conn.await;
                });
                return Ok(Connection { sender, io });
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no address to connect to"), anyhow::Error::from))
}

/// Sends one request on `connection` (opening one if it has none or it closed) and reads the
/// whole response body; returns the status and the body's length.
async fn exchange(connection: &mut Option<Connection>, target: &Target) -> Result<(u16, u64)> {
    if connection.as_ref().is_none_or(|c| c.sender.is_closed()) {
        *connection = Some(connect(target).await?);
    }
    let s = &mut connection.as_mut().expect("connected above").sender;
    s.ready().await?;
    let response = s.send_request(target.request.clone()).await?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            bytes += data.len() as u64;
        }
    }
    Ok((status, bytes))
}

/// One connection's loop: sends each request the pacer hands it (open loop, `slots` is
/// `Some`), or back to back until the end (closed loop). A request must be answered within
/// the timeout of its intended send time; a request already that late when its connection
/// frees up is counted as timed out without being sent, so a hung server cannot stretch the
/// run past `end + timeout`.
async fn worker(
    target: Arc<Target>,
    mut connection: Option<Connection>,
    mut slots: Option<UnboundedReceiver<Instant>>,
    window: Window,
) -> Tally {
    let mut tally = Tally::new(window.timeout);
    loop {
        let intended = match &mut slots {
            Some(rx) => match rx.recv().await {
                Some(at) => at,
                None => break,
            },
            None => {
                let now = Instant::now();
                if now >= window.end {
                    break;
                }
                now
            }
        };
        let counted = intended >= window.measure_from;
        tally.requests += u64::from(counted);
        let deadline = intended + window.timeout;
        if Instant::now() >= deadline {
            tally.timeouts += u64::from(counted);
            connection = None;
            continue;
        }
        let outcome = tokio::time::timeout_at(deadline.into(), exchange(&mut connection, &target)).await;
        let done = Instant::now();
        match outcome {
            Ok(Ok((status, bytes))) => {
                if counted {
                    match status {
                        200..=599 => tally.classes[usize::from(status / 100 - 2)] += 1,
                        _ => tally.other_status += 1,
                    }
                    tally.bytes += bytes;
                    let micros = u64::try_from(done.duration_since(intended).as_micros()).unwrap_or(u64::MAX);
                    tally.latency.saturating_record(micros.max(1));
                    tally.last_done = Some(done);
                }
            }
            Ok(Err(_)) | Err(_) => {
                if outcome.is_err() {
                    tally.timeouts += u64::from(counted);
                } else {
                    tally.broken += u64::from(counted);
                }
                // The connection may be stuck or half closed: start afresh.
                connection = None;
                if slots.is_none() {
                    // Closed loop against a server that refuses connections: do not spin.
                    tokio::time::sleep_until(window.end.min(Instant::now() + Duration::from_millis(10)).into()).await;
                }
            }
        }
    }
    tally
}

/// Hands out send times for an open-loop run, from a plain thread: tokio's timer has
/// millisecond granularity, which would be charged to the server as latency, while
/// `thread::sleep` wakes within tens of microseconds. Request `i` is due at
/// `start + i / rate` and goes to connection `i % connections`; a connection still busy with
/// its previous request queues it, and that wait counts as latency, as it would for a real
/// client. When the pacer itself falls behind it catches up at once, keeping each request's
/// intended time.
fn pace(rate: f64, start: Instant, end: Instant, slots: &[UnboundedSender<Instant>]) {
    for i in 0u64.. {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        if at >= end {
            break;
        }
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        let slot = usize::try_from(i % slots.len() as u64).expect("less than the number of connections");
        if slots[slot].send(at).is_err() {
            break;
        }
    }
}

/// Opens the connections, then runs the plan to its end and returns the merged tally.
pub async fn run(target: Target, plan: Plan) -> Tally {
    let target = Arc::new(target);
    // Connect before the clock starts, so the first requests do not pay for the handshake;
    // a connection that fails here is retried by its worker, and counted then.
    let connects: Vec<_> = (0..plan.connections)
        .map(|_| {
            let target = target.clone();
            tokio::spawn(async move { tokio::time::timeout(plan.timeout, connect(&target)).await.ok()?.ok() })
        })
        .collect();
    let mut connections = Vec::with_capacity(connects.len());
    for c in connects {
        connections.push(c.await.expect("a connect task does not panic"));
    }
    let start = Instant::now();
    let window = Window { measure_from: start + plan.warmup, end: start + plan.duration, timeout: plan.timeout };
    let mut slot_senders = Vec::new();
    let workers: Vec<_> = connections
        .into_iter()
        .map(|connection| {
            let slots = plan.rate.map(|_| {
                let (tx, rx) = unbounded_channel();
                slot_senders.push(tx);
                rx
            });
            tokio::spawn(worker(target.clone(), connection, slots, window))
        })
        .collect();
    let pacer = plan.rate.map(|rate| std::thread::spawn(move || pace(rate, start, window.end, &slot_senders)));
    let mut total = Tally::new(plan.timeout);
    for w in workers {
        total.merge(&w.await.expect("a worker does not panic"));
    }
    if let Some(p) = pacer {
        p.join().expect("the pacer does not panic");
    }
    total.elapsed = total.last_done.map_or(window.end, |t| t.max(window.end)) - window.measure_from;
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_counts_everything_but_2xx_and_3xx() {
        let mut t = Tally::new(Duration::from_secs(1));
        t.classes = [10, 2, 3, 4];
        t.other_status = 1;
        t.broken = 5;
        t.timeouts = 6;
        assert_eq!(t.responses(), 20);
        assert_eq!(t.transport_errors(), 11);
        assert_eq!(t.failed(), 3 + 4 + 1 + 11);
    }

    #[test]
    fn merge_adds_counts_and_histograms() {
        let mut a = Tally::new(Duration::from_secs(1));
        let mut b = Tally::new(Duration::from_secs(1));
        a.latency.record(100).unwrap();
        b.latency.record(300).unwrap();
        b.latency.saturating_record(5_000_000);
        a.requests = 1;
        b.requests = 2;
        a.merge(&b);
        assert_eq!(a.requests, 3);
        assert_eq!(a.latency.len(), 3);
        assert!(a.latency.max() >= 999_000, "saturated at the timeout: {}", a.latency.max());
    }
}
