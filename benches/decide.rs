//! parse + mark + decide, the work the gateway does for every message, on two messages:
//! - a typical 10 KiB Outlook message (sensitivity label, multipart/alternative, HTML);
//! - a 10 MiB one (the same, with a large base64 attachment).
//!
//! Targets on the 2-core build machine: >= 50,000 typical messages/s on one core, and
//! >= 200 MB/s on the large one. Run: `cargo bench --bench decide`.
use std::hint::black_box;
use std::path::Path;

use base64::Engine;
use chrono::NaiveDate;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use markgate::decision::{decide, Decision};
use markgate::facts::{self, MessageFacts};
use markgate::policy::Policy;
use markgate::{marking, message};

fn policy() -> Policy {
    Policy::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("policy")).expect("shipped policy")
}

/// An Outlook-style message of about `size` bytes, plus an attachment of `attachment` bytes
/// (before base64).
fn outlook_message(attachment: usize) -> Vec<u8> {
    let mut m = String::new();
    m.push_str(
        "Received: from EX01.westmidlands.pnn.police.uk (10.1.2.3) by EX02.westmidlands.pnn.police.uk\r\n\
         \x20(10.1.2.4) with Microsoft SMTP Server id 15.2.1544.4; Tue, 24 Nov 2026 09:12:45 +0000\r\n\
         From: \"Smith, Sam\" <sam.smith@westmidlands.pnn.police.uk>\r\n\
         To: \"Bloggs, Jo\" <jo.bloggs@birmingham.gov.uk>, \"Duty Sergeant\" <duty@westmidlands.pnn.police.uk>\r\n\
         Subject: RE: OFFICIAL-SENSITIVE: MASH referral 24/1187 - strategy discussion\r\n\
         Thread-Topic: MASH referral 24/1187 - strategy discussion\r\n\
         Thread-Index: AQHbPq1xYz1234567890abcdefghijklmnop==\r\n\
         Date: Tue, 24 Nov 2026 09:12:44 +0000\r\n\
         Message-ID: <DB9PR01MB0001ABCDEF@DB9PR01MB0001.eurprd01.prod.outlook.com>\r\n\
         References: <DB9PR01MB0000ABCDEF@DB9PR01MB0001.eurprd01.prod.outlook.com>\r\n\
         In-Reply-To: <DB9PR01MB0000ABCDEF@DB9PR01MB0001.eurprd01.prod.outlook.com>\r\n\
         Accept-Language: en-GB, en-US\r\nContent-Language: en-GB\r\n\
         X-MS-Has-Attach: yes\r\nX-MS-TNEF-Correlator:\r\n\
         msip_labels: MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_Enabled=true;\r\n\
         \x20MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_SetDate=2026-11-24T09:10:02Z;\r\n\
         \x20MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_Method=Privileged;\r\n\
         \x20MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_Name=Sensitive Personal;\r\n\
         \x20MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_SiteId=3c5e0d1a-7f43-4b8e-9a2d-6e1f0b2c4d5e;\r\n\
         \x20MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_ActionId=6b1c2d3e-0000-4000-8000-1234567890ab;\r\n\
         \x20MSIP_Label_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d_ContentBits=0\r\n\
         X-ISA-Reference: ISA-0001\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"_004_mixed_\"\r\n\r\n\
         --_004_mixed_\r\nContent-Type: multipart/alternative; boundary=\"_000_alt_\"\r\n\r\n\
         --_000_alt_\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
         OFFICIAL-SENSITIVE PERSONAL\r\n\r\nHi Jo,\r\n\r\n",
    );
    let para = "Following the strategy discussion this morning, the actions agreed are set out below. Please =\r\nconfirm the visit on Thursday and update the chronology before the review.\r\n\r\n";
    for _ in 0..16 {
        m.push_str(para);
    }
    m.push_str("Kind regards\r\nSam\r\n\r\nOFFICIAL-SENSITIVE PERSONAL\r\n\r\n--_000_alt_\r\n\
        Content-Type: text/html; charset=\"us-ascii\"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
        <html><head><meta http-equiv=3D\"Content-Type\" content=3D\"text/html; charset=3Dus-ascii\">\r\n\
        <style><!-- p.MsoNormal {margin:0cm; font-size:11.0pt; font-family:\"Calibri\",sans-serif;} --></style></head>\r\n\
        <body lang=3D\"EN-GB\"><div class=3D\"WordSection1\">\r\n\
        <p class=3D\"MsoNormal\" align=3D\"center\"><b><span style=3D\"color:red\">OFFICIAL-SENSITIVE PERSONAL</span></b></p>\r\n");
    for _ in 0..16 {
        m.push_str("<p class=3D\"MsoNormal\">Following the strategy discussion this morning, the actions agreed are set out below. Please =\r\nconfirm the visit on Thursday and update the chronology.<o:p></o:p></p>\r\n");
    }
    m.push_str("<p class=3D\"MsoNormal\" align=3D\"center\"><b>OFFICIAL-SENSITIVE PERSONAL</b></p>\r\n</div></body></html>\r\n\r\n--_000_alt_--\r\n\r\n");
    if attachment > 0 {
        let data: Vec<u8> = (0..attachment as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        m.push_str("--_004_mixed_\r\nContent-Type: application/pdf; name=\"chronology.pdf\"\r\n\
            Content-Disposition: attachment; filename=\"chronology.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n");
        for line in b64.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(line).unwrap());
            m.push_str("\r\n");
        }
        m.push_str("\r\n");
    }
    m.push_str("--_004_mixed_--\r\n");
    m.into_bytes()
}

/// A Thunderbird-style 10 KiB text/plain message (8bit, UTF-8, no attachment).
fn plain_message() -> Vec<u8> {
    let mut m = String::from(
        "From: Sam Smith <sam.smith@westmidlands.pnn.police.uk>\r\n\
         To: Jo Bloggs <jo.bloggs@birmingham.gov.uk>\r\n\
         Subject: [OFFICIAL-SENSITIVE] MASH referral 24/1187\r\n\
         Date: Tue, 24 Nov 2026 09:12:44 +0000\r\n\
         Message-ID: <5b6c7d8e-0000-4000-8000-aabbccddeeff@westmidlands.pnn.police.uk>\r\n\
         User-Agent: Mozilla Thunderbird\r\nContent-Language: en-GB\r\nMIME-Version: 1.0\r\n\
         X-ISA-Reference: ISA-0001\r\n\
         Content-Type: text/plain; charset=UTF-8; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
         OFFICIAL-SENSITIVE\r\n\r\nHi Jo,\r\n\r\n",
    );
    while m.len() < 10 * 1024 - 40 {
        m.push_str("Following the strategy discussion this morning, the actions agreed are set out below.\r\n");
    }
    m.push_str("\r\nSam\r\n\r\nOFFICIAL-SENSITIVE\r\n");
    m.into_bytes()
}

/// The facts the gateway builds for a parsed message from a force sender.
fn facts(parsed: &message::ParsedMessage<'_>, policy: &Policy) -> MessageFacts {
    facts::from_message(
        parsed,
        "sam.smith@westmidlands.pnn.police.uk",
        &[
            "jo.bloggs@birmingham.gov.uk".into(),
            "duty@westmidlands.pnn.police.uk".into(),
        ],
        policy,
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(),
    )
}

fn pipeline(raw: &[u8], policy: &Policy) -> Decision {
    let parsed = message::parse(raw).expect("message");
    decide(&facts(&parsed, policy), policy)
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let typical = outlook_message(0);
    // pad the typical message to 10 KiB with a small attachment
    let pad = (10 * 1024usize).saturating_sub(typical.len());
    let typical = outlook_message(pad * 3 / 4);
    let large = outlook_message(10 * 1024 * 1024 * 3 / 4);
    let d = pipeline(&typical, &policy);
    assert_eq!(d.marking.label, "OFFICIAL-SENSITIVE PERSONAL");
    assert!(d.is_allowed(), "{:?}", d.recipients);
    assert_eq!(
        pipeline(&large, &policy).marking.label,
        "OFFICIAL-SENSITIVE PERSONAL"
    );

    let mut g = c.benchmark_group("parse+mark+decide");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("typical {} B", typical.len()), |b| {
        b.iter(|| pipeline(black_box(&typical), &policy))
    });
    let plain = plain_message();
    assert_eq!(
        pipeline(&plain, &policy).marking.label,
        "OFFICIAL-SENSITIVE"
    );
    g.bench_function(format!("typical plain {} B", plain.len()), |b| {
        b.iter(|| pipeline(black_box(&plain), &policy))
    });
    g.finish();

    // The stages on their own, to see where the time goes.
    let mut g = c.benchmark_group("stage");
    let parsed = message::parse(&typical).unwrap();
    let facts = facts(&parsed, &policy);
    g.bench_function("parse typical", |b| {
        b.iter(|| message::parse(black_box(&typical)).unwrap().parts.len())
    });
    g.bench_function("mark typical", |b| {
        b.iter(|| marking::read(black_box(&parsed), &policy.markings))
    });
    g.bench_function("reader setup", |b| {
        b.iter(|| marking::MarkingReader::new(black_box(&policy.markings)).finish())
    });
    g.bench_function("decide typical", |b| {
        b.iter(|| decide(black_box(&facts), &policy))
    });
    g.finish();

    let mut g = c.benchmark_group("parse+mark+decide");
    g.throughput(Throughput::Bytes(large.len() as u64));
    g.sample_size(20);
    g.bench_function(format!("large {} B", large.len()), |b| {
        b.iter(|| pipeline(black_box(&large), &policy))
    });
    g.finish();
}

/// CPU time this thread has run, in nanoseconds (Linux `schedstat`). The build machine is
/// shared, so wall-clock figures under load understate what one core does; CPU time does not.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Per-core figures from CPU time: messages per CPU-second and bytes per CPU-second.
fn cpu_time_report(_c: &mut Criterion) {
    let policy = policy();
    let typical =
        outlook_message((10 * 1024usize).saturating_sub(outlook_message(0).len()) * 3 / 4);
    let large = outlook_message(10 * 1024 * 1024 * 3 / 4);
    let plain = plain_message();
    for (name, raw, iterations) in [
        ("typical", &typical, 20_000u32),
        ("typical plain", &plain, 20_000),
        ("large", &large, 40),
    ] {
        let Some(start) = thread_cpu_ns() else { return };
        for _ in 0..iterations {
            black_box(pipeline(black_box(raw), &policy));
        }
        let ns = thread_cpu_ns()
            .unwrap_or(start)
            .saturating_sub(start)
            .max(1) as f64;
        let per = ns / f64::from(iterations);
        println!(
            "cpu-time {name} ({} B): {:.1} µs CPU per message = {:.0} messages per CPU-second = {:.0} MB per CPU-second",
            raw.len(),
            per / 1e3,
            1e9 / per,
            raw.len() as f64 * 1e9 / per / 1e6
        );
    }
}

criterion_group!(benches, bench, cpu_time_report);
criterion_main!(benches);
