//! Records benchmark: many concurrent callers recording one decision record each, durably
//! (WAL, synchronous=FULL), through the group-committing recorder.
//!
//! Each caller builds its record from the decision as a gateway does
//! (`record::build`), so the CPU time per record printed covers everything a
//! record costs the gateway: building, encoding, handing over, hashing, the SQLite insert and
//! the share of the fsynced commit (user + system time of the whole process, from
//! /proc/self/stat, divided by the records written).
//!
//! `cargo bench --bench records` (env: MARKGATE_BENCH_RECORDS, default 200000;
//! MARKGATE_BENCH_CALLERS, default 256; MARKGATE_BENCH_DIR, default a temporary folder;
//! MARKGATE_BENCH_COMMIT_DELAY, the recorder's `records.commit_delay`, default its default).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use markgate::config::records::RecordsConfig;
use markgate::decision::{decide, Decision};
use markgate::facts::{self, Declared, Recipient};
use markgate::marking::Marking;
use markgate::policy::Policy;
use markgate::record::store::{PreparedRecord, StoreOptions};
use markgate::record::{Channel, Outcome, RecordMeta, Recorder, Store};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time (user + system) the whole process has used so far, from /proc/self/stat (in
/// clock ticks of 1/100 s: Linux's USER_HZ).
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("stat has a command") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// The decision and metadata every caller records: a 20 KB OFFICIAL-SENSITIVE message to a
/// partner under an ISA, as the SMTP gateway records it.
fn decision_and_meta() -> (Decision, RecordMeta) {
    let policy = Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy"))
        .expect("shipped policy loads");
    let marking = markgate::marking::read_text("OFFICIAL-SENSITIVE", &policy.markings)
        .unwrap_or_else(|| Marking::unmarked(&policy.markings));
    let declared = Declared::given(Some("MASH referral"), Some("Children Act 2004 s.11"), None);
    let facts = facts::given(
        "pc.smith@westmidlands.pnn.police.uk",
        vec![Recipient::mail("mash@birmingham.gov.uk", &policy)],
        marking,
        Some("ISA-0001"),
        declared,
        Utc::now().date_naive(),
    );
    let decision = decide(&facts, &policy);
    let body = vec![b'x'; 20_000];
    let mut meta = RecordMeta::new(Channel::Smtp, &facts.sender, &body);
    meta.message_id = Some("<bench@westmidlands.pnn.police.uk>".into());
    meta.incident_min_rank = markgate::record::incident_min_rank(&policy, "SECRET");
    (decision, meta)
}

fn main() {
    let total = env_u64("MARKGATE_BENCH_RECORDS", 200_000);
    let callers = env_u64("MARKGATE_BENCH_CALLERS", 256).max(1);
    let tmp = tempfile::tempdir().expect("temporary folder");
    let dir = std::env::var_os("MARKGATE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let path = dir.join(format!("bench-{}.sqlite", std::process::id()));
    let defaults = RecordsConfig::default();
    let config = RecordsConfig {
        path: path.clone(),
        commit_delay: std::env::var("MARKGATE_BENCH_COMMIT_DELAY")
            .unwrap_or(defaults.commit_delay.clone()),
        ..defaults
    };
    let recorder = Recorder::open(&config).expect("store opens");
    let (decision, meta) = decision_and_meta();
    let decision = Arc::new(decision);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let cpu_before = process_cpu();
    let started = Instant::now();
    let latencies: Vec<Duration> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let recorder = recorder.clone();
            let decision = decision.clone();
            let meta = meta.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let t = Instant::now();
                    let mut meta = meta.clone();
                    meta.time = Utc::now();
                    let records = markgate::record::build(&decision, &meta, &Outcome::AsDecided);
                    recorder.record(records).await.expect("recorded");
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let elapsed = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let mut latencies = latencies;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    let wal = std::fs::metadata(path.with_extension("sqlite-wal")).map_or(0, |m| m.len());
    println!(
        "records (commit_delay {}): {total} durable records from {callers} concurrent callers in {:.2} s = {:.0} records/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        config.commit_delay,
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    println!(
        "cpu: {:.2} s user+system = {:.1} us per record ({:.2} of {} CPUs busy)",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / total as f64,
        cpu.as_secs_f64() / elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    drop(recorder);
    let store = Store::open_read_only(&path).expect("store reopens");
    let t = Instant::now();
    let report = store.verify().expect("verify runs");
    println!("wal: {} MB at the end of the run", wal / 1_000_000);
    println!(
        "verify: {} records intact={} in {:.2} s; store {} MB",
        report.records,
        report.is_intact(),
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path)
            .map(|m| m.len() / 1_000_000)
            .unwrap_or(0)
    );
    assert!(report.is_intact());
    assert_eq!(report.records, total);

    // The writer's ceiling: one thread appending prepared records 1000 to a commit.
    let path2 = dir.join(format!("bench-{}-ceiling.sqlite", std::process::id()));
    let mut store = Store::open(&path2, &StoreOptions::default()).expect("store opens");
    let prepared: Vec<PreparedRecord> = (0..20_000)
        .map(|_| {
            PreparedRecord::new(
                markgate::record::build(&decision, &meta, &Outcome::AsDecided).remove(0),
            )
        })
        .collect();
    let cpu_before = process_cpu();
    let t = Instant::now();
    for chunk in prepared.chunks(1000) {
        store
            .append_prepared(&chunk.iter().collect::<Vec<_>>())
            .expect("appended");
    }
    let secs = t.elapsed().as_secs_f64();
    let cpu = process_cpu().saturating_sub(cpu_before);
    println!(
        "writer ceiling: {} records in commits of 1000 in {secs:.2} s = {:.0} records/s; {:.1} us CPU per record (hash, insert, commit)",
        prepared.len(),
        prepared.len() as f64 / secs,
        cpu.as_secs_f64() * 1e6 / prepared.len() as f64,
    );
}
