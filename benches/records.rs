//! Records benchmark: many concurrent callers recording one decision record each, durably
//! (WAL, synchronous=FULL), through the group-committing recorder.
//!
//! `cargo bench --bench records` (env: MARKGATE_BENCH_RECORDS, default 200000;
//! MARKGATE_BENCH_CALLERS, default 256; MARKGATE_BENCH_DIR, default a temporary folder).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use markgate::decision::decide;
use markgate::facts::{self, Declared, Recipient};
use markgate::marking::Marking;
use markgate::policy::Policy;
use markgate::record::store::{PreparedRecord, StoreOptions};
use markgate::record::{Channel, DecisionRecord, Outcome, RecordMeta, Recorder, Store};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn template() -> DecisionRecord {
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
    markgate::record::build(&decision, &meta, &Outcome::AsDecided).remove(0)
}

fn main() {
    let total = env_u64("MARKGATE_BENCH_RECORDS", 200_000);
    let callers = env_u64("MARKGATE_BENCH_CALLERS", 256).max(1);
    let tmp = tempfile::tempdir().expect("temporary folder");
    let dir = std::env::var_os("MARKGATE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let path = dir.join(format!("bench-{}.sqlite", std::process::id()));
    let recorder = Recorder::open_path(&path, &StoreOptions::default()).expect("store opens");
    let template = template();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let latencies: Vec<Duration> = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..callers {
            let recorder = recorder.clone();
            let template = template.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < total {
                    let mut r = template.clone();
                    r.id = uuid::Uuid::new_v4().to_string();
                    r.time = markgate::record::model::truncate_micros(Utc::now());
                    let t = Instant::now();
                    recorder.record(vec![r]).await.expect("recorded");
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
    let mut latencies = latencies;
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "records: {total} durable records from {callers} concurrent callers in {:.2} s = {:.0} records/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
    );
    drop(recorder);
    let store = Store::open_read_only(&path).expect("store reopens");
    let t = Instant::now();
    let report = store.verify().expect("verify runs");
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
            let mut r = template.clone();
            r.id = uuid::Uuid::new_v4().to_string();
            PreparedRecord::new(r)
        })
        .collect();
    let t = Instant::now();
    for chunk in prepared.chunks(1000) {
        store
            .append_prepared(&chunk.iter().collect::<Vec<_>>())
            .expect("appended");
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "writer ceiling: {} records in commits of 1000 in {secs:.2} s = {:.0} records/s",
        prepared.len(),
        prepared.len() as f64 / secs
    );
}
