//! The recorder: durable group commit from many callers, and errors a gateway must turn into
//! temporary failures when the store is full or read-only.
mod common;

use std::path::PathBuf;

use common::record::*;
use markgate::config::records::RecordsConfig;
use markgate::record::store::StoreOptions;
use markgate::record::{Filter, RecordError, Recorder, Store};

fn config(path: PathBuf) -> RecordsConfig {
    RecordsConfig {
        path,
        ..RecordsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_are_all_recorded_in_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/records.sqlite");
    let recorder = Recorder::open(&config(path.clone())).unwrap();
    let p = policy();
    let template = records(
        &p,
        "2026-02-11T09:00:00Z",
        "OFFICIAL",
        &["mash@birmingham.gov.uk", "c@gmail.com"],
        None,
    );
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let recorder = recorder.clone();
        let template = template.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                let mut batch = template.clone();
                for r in &mut batch {
                    r.id = uuid::Uuid::new_v4().to_string();
                }
                recorder.record(batch).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Everything acknowledged is on file, readable by another connection.
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.count().unwrap(), 50 * 10 * 2);
    let report = store.verify().unwrap();
    assert!(report.is_intact(), "{:?}", report.tamper);
    assert_eq!(report.last_seq, Some(1000));
    // A message's recipients stay together in the chain.
    let stored = store.query(&Filter::default()).unwrap();
    for pair in stored.chunks(2) {
        assert_eq!(pair[0].record.sha256, pair[1].record.sha256);
        assert_eq!(pair[0].record.recipient, "mash@birmingham.gov.uk");
        assert_eq!(pair[1].record.recipient, "c@gmail.com");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_commit_delay_every_caller_is_still_recorded_before_it_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let recorder = Recorder::open(&RecordsConfig {
        commit_delay: "2ms".into(),
        ..config(path.clone())
    })
    .unwrap();
    let p = policy();
    let template = records(
        &p,
        "2026-02-11T09:00:00Z",
        "OFFICIAL",
        &["c@gmail.com"],
        None,
    );
    let mut tasks = Vec::new();
    for caller in 0..40 {
        let recorder = recorder.clone();
        let template = template.clone();
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let reader = Store::open_read_only(&path).unwrap();
            for i in 0..10 {
                let mut batch = template.clone();
                batch[0].id = format!("caller-{caller}-{i}");
                recorder.record(batch).await.unwrap();
                // Answered means on file: another connection sees it at once.
                let ids: Vec<String> = reader
                    .query(&Filter::default())
                    .unwrap()
                    .into_iter()
                    .map(|r| r.record.id)
                    .collect();
                assert!(ids.contains(&format!("caller-{caller}-{i}")));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.count().unwrap(), 400);
    assert!(store.verify().unwrap().is_intact());
}

#[test]
fn the_incident_class_comes_from_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let p = policy();
    let recorder = Recorder::open(&config(dir.path().join("r.sqlite"))).unwrap();
    assert_eq!(
        recorder.incident_min_rank(&p),
        Some(40),
        "SECRET by default"
    );
    let recorder = Recorder::open(&RecordsConfig {
        incident_class: "CONFIDENTIAL".into(),
        ..config(dir.path().join("r2.sqlite"))
    })
    .unwrap();
    assert_eq!(recorder.incident_min_rank(&p), Some(30));
}

#[test]
fn blocking_callers_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let recorder = Recorder::open(&config(path.clone())).unwrap();
    let p = policy();
    recorder
        .record_blocking(sample(&p))
        .expect("records are written");
    recorder.record_blocking(Vec::new()).unwrap();
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.count().unwrap(), sample(&p).len() as u64);
    assert!(store.verify().unwrap().is_intact());
}

/// A recorder on a store of at most 1 MiB (about 1,000 records) at `dir`/records.sqlite,
/// and one OFFICIAL record to gmail.com to copy.
fn small_store(
    dir: &std::path::Path,
) -> (Recorder, PathBuf, Vec<markgate::record::DecisionRecord>) {
    let path = dir.join("records.sqlite");
    let cfg = RecordsConfig {
        max_size_mb: Some(1),
        ..config(path.clone())
    };
    let recorder = Recorder::open(&cfg).unwrap();
    let one = records(
        &policy(),
        "2026-02-11T09:00:00Z",
        "OFFICIAL",
        &["c@gmail.com"],
        None,
    );
    (recorder, path, one)
}

#[tokio::test]
async fn a_full_store_is_an_error_and_writes_nothing_of_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (recorder, path, one) = small_store(dir.path());
    recorder.record(one.clone()).await.expect("room for one");
    // About 1 KiB a record: 3000 records do not fit in 1 MiB.
    let mut big = Vec::new();
    for _ in 0..3000 {
        let mut r = one[0].clone();
        r.id = uuid::Uuid::new_v4().to_string();
        big.push(r);
    }
    let err = recorder.record(big).await.expect_err("the store is full");
    assert!(matches!(err, RecordError::Full { .. }), "{err}");
    assert!(err.is_storage_full_or_read_only());
    // The failed batch left nothing behind, and the recorder still works for what fits.
    recorder
        .record(
            one.iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.id = "again".into();
                    r
                })
                .collect(),
        )
        .await
        .unwrap();
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.count().unwrap(), 2);
    assert!(store.verify().unwrap().is_intact());
}

#[tokio::test]
async fn a_read_only_store_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    drop(Store::open(&path, &StoreOptions::default()).unwrap());
    let recorder = Recorder::with_store(Store::open_read_only(&path).unwrap());
    let p = policy();
    let err = recorder
        .record(records(
            &p,
            "2026-02-11T09:00:00Z",
            "OFFICIAL",
            &["c@gmail.com"],
            None,
        ))
        .await
        .expect_err("a read-only store cannot take records");
    assert!(matches!(err, RecordError::ReadOnly { .. }), "{err}");
    assert_eq!(Store::open_read_only(&path).unwrap().count().unwrap(), 0);
}

#[test]
fn a_store_that_cannot_be_created_fails_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err =
        Recorder::open(&config(file.join("records.sqlite"))).expect_err("no store under a file");
    assert!(
        matches!(
            err,
            RecordError::Directory { .. } | RecordError::Open { .. }
        ),
        "{err}"
    );
    // A file that is not a database is refused too.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    assert!(Recorder::open(&config(junk)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_sees_an_intact_chain_while_the_gateway_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite");
    let recorder = Recorder::open(&config(path.clone())).unwrap();
    let p = policy();
    let one = records(
        &p,
        "2026-02-11T09:00:00Z",
        "OFFICIAL",
        &["c@gmail.com", "a@westmidlands.pnn.police.uk"],
        None,
    );
    recorder.record(one.clone()).await.unwrap();
    let writer = {
        let recorder = recorder.clone();
        tokio::spawn(async move {
            for _ in 0..300 {
                recorder.record(one.clone()).await.unwrap();
            }
        })
    };
    let checker = tokio::task::spawn_blocking(move || {
        let store = Store::open_read_only(&path).unwrap();
        let mut checks = 0;
        loop {
            let report = store.verify().unwrap();
            assert!(report.is_intact(), "{:?}", report.tamper);
            checks += 1;
            if report.records >= 602 {
                return checks;
            }
        }
    });
    writer.await.unwrap();
    assert!(checker.await.unwrap() >= 1);
}

/// Threads that take their answers together (the HTTP workers: one single-threaded runtime
/// each) alongside an ordinary caller: each caller gets back exactly its own records, durable,
/// and a commit that fails is reported to every caller it carried, on every thread.
#[test]
fn callers_on_threads_answered_together_get_their_own_records_or_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let (recorder, path, template) = small_store(dir.path());
    let worker = |thread: usize, callers: usize, size: usize| {
        let recorder = recorder.clone();
        let template = template.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                Recorder::answer_on_this_thread();
                let mut tasks = Vec::new();
                for caller in 0..callers {
                    let recorder = recorder.clone();
                    let mut batch: Vec<_> = (0..size).map(|_| template[0].clone()).collect();
                    for (i, r) in batch.iter_mut().enumerate() {
                        r.id = format!("t{thread}-c{caller}-{i}");
                    }
                    tasks.push(tokio::spawn(async move {
                        let sent: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
                        let answer = recorder.record(batch).await;
                        (sent, answer)
                    }));
                }
                let mut answers = Vec::new();
                for t in tasks {
                    answers.push(t.await.unwrap());
                }
                answers
            })
        })
    };
    // Small batches: all fit, many callers per commit.
    let threads: Vec<_> = (0..2).map(|t| worker(t, 40, 2)).collect();
    let ordinary = recorder.record_blocking(template.clone()).unwrap();
    assert_eq!(ordinary.len(), 1);
    for t in threads {
        for (sent, answer) in t.join().unwrap() {
            let got: Vec<String> = answer
                .expect("recorded")
                .into_iter()
                .map(|r| r.id)
                .collect();
            assert_eq!(got, sent, "each caller is answered with its own records");
        }
    }
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(store.count().unwrap(), 2 * 40 * 2 + 1);
    assert!(store.verify().unwrap().is_intact());
    drop(store);

    // Batches that cannot fit (about 1 KiB a record, 1 MiB store): every caller hears why.
    let threads: Vec<_> = (2..4).map(|t| worker(t, 3, 1500)).collect();
    for t in threads {
        for (_, answer) in t.join().unwrap() {
            let err = answer.expect_err("the store is full");
            assert!(err.is_storage_full_or_read_only(), "{err}");
        }
    }
    let store = Store::open_read_only(&path).unwrap();
    assert_eq!(
        store.count().unwrap(),
        2 * 40 * 2 + 1,
        "nothing of a failed commit"
    );
    assert!(store.verify().unwrap().is_intact());
}
