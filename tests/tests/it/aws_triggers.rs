//! S3-triggered runs under the emulator (`moto_server`): the raw bucket's real event
//! notifications to SQS (bucket notification configuration), several `stackpro worker
//! --queue` processes on one queue, and workers killed with SIGKILL mid-release.
//!
//! What each test checks is what an operator and a buyer would see: one release per
//! partition, each good record published once, bad ones in quarantine, no catalog entry
//! naming a missing file, poison in the dead-letter queue, nothing else left on the queue.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration, StorageClass};
use aws_sdk_sqs::types::QueueAttributeName;

use super::aws::{AwsEnv, emulator, s3_client, sdk};
use super::*;

/// A queue with its dead-letter queue, announcing the raw bucket's new objects.
struct RawEvents {
    queue: String,
    dlq: String,
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("queue arn")
}

/// Creates the queue and its dead-letter queue (after `max_receive` receives) and points
/// the raw bucket's `s3:ObjectCreated:*` notifications at it, as an operator does.
async fn notifications_to_a_queue(aws: &AwsEnv, max_receive: u32) -> RawEvents {
    let sdk = sdk(&aws.endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let create = |name: String| {
        let sqs = sqs.clone();
        async move {
            sqs.create_queue()
                .queue_name(name)
                .send()
                .await
                .expect("create queue")
                .queue_url
                .expect("queue url")
        }
    };
    let dlq = create(format!("dlq-{}", aws.unique)).await;
    let dlq_arn = queue_arn(&sqs, &dlq).await;
    let queue = create(format!("raw-{}", aws.unique)).await;
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive.to_string()})
                .to_string(),
        )
        .send()
        .await
        .expect("redrive policy");
    let arn = queue_arn(&sqs, &queue).await;
    s3_client(&sdk)
        .put_bucket_notification_configuration()
        .bucket(aws.bucket("raw"))
        .notification_configuration(
            NotificationConfiguration::builder()
                .queue_configurations(
                    QueueConfiguration::builder()
                        .queue_arn(arn)
                        .events(Event::S3ObjectCreated)
                        .build()
                        .expect("queue configuration"),
                )
                .build(),
        )
        .send()
        .await
        .expect("bucket notification configuration");
    RawEvents { queue, dlq }
}

/// The raw lines (as bytes: some are deliberately not UTF-8) `stackpro gen` makes.
fn gen_lines(
    aws: &AwsEnv,
    tenant: &str,
    dt: &str,
    records: u64,
    dirty: f64,
    seed: u64,
) -> Vec<Vec<u8>> {
    // Generated into the local folder's raw layout, which this backend does not read.
    let local = aws.env.generate_at(
        "contacts",
        tenant,
        dt,
        records,
        &format!("gen-{seed}.ndjson"),
        dirty,
        seed,
    );
    std::fs::read(&local)
        .expect("generated file")
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut line = l.to_vec();
            line.push(b'\n');
            line
        })
        .collect()
}

fn raw_key(tenant: &str, dt: &str, name: &str) -> String {
    format!("tenant={tenant}/dataset=contacts/source=web-form/dt={dt}/{name}")
}

async fn put(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: Vec<u8>) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("upload raw object");
}

/// `stackpro worker --queue` with short timings (a 3 s lease: a killed worker's partition
/// is free again soon).
fn worker(aws: &AwsEnv, queue: &str, idle_exit_secs: Option<u64>) -> std::process::Command {
    let idle = idle_exit_secs.map(|s| s.to_string());
    let mut args = vec![
        "worker",
        "--queue",
        queue,
        "--wait-secs",
        "1",
        "--visibility-secs",
        "2",
    ];
    if let Some(idle) = &idle {
        args.extend(["--idle-exit-secs", idle.as_str()]);
    }
    let mut cmd = aws.cmd(&args);
    cmd.env("STACKPRO_LEASE_TTL_SECS", "3");
    cmd
}

fn worker_stats(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "worker failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("worker stats")
}

/// A worker spawned with its log read as it runs: each "published" line is sent on the
/// channel the moment it is written, so a test can signal or kill the worker at a point of
/// its work it has seen rather than after a delay that a faster or slower machine shifts.
/// The thread returns the whole log.
fn spawn_logged(
    mut cmd: std::process::Command,
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<()>,
    std::thread::JoinHandle<String>,
) {
    let mut child = cmd
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("worker");
    let stderr = child.stderr.take().expect("stderr");
    let (published, rx) = std::sync::mpsc::channel();
    let log = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("published") && line.contains("release=") {
                let _ = published.send(());
            }
            lines.push(line);
        }
        lines.join("\n")
    });
    (child, rx, log)
}

fn releases(aws: &AwsEnv) -> Vec<serde_json::Value> {
    serde_json::from_str(&aws.ok(&["releases", "--json"])).expect("releases json")
}

/// The cells of a `stackpro query` table, header row excluded.
fn queried(aws: &AwsEnv, sql: &str) -> Vec<String> {
    query_rows(&aws.ok(&["query", sql]))
}

async fn drain(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<String> {
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() && !bodies.is_empty() {
            break;
        }
        bodies.extend(messages.into_iter().filter_map(|m| m.body));
    }
    bodies
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn real_bucket_notifications_publish_each_partition_once_and_an_archived_object_goes_to_the_dead_letter_queue()
 {
    let aws = AwsEnv::new(&emulator());
    aws.ok(&["setup"]);
    let events = notifications_to_a_queue(&aws, 2).await;
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let raw = aws.bucket("raw");
    let tenants: Vec<String> = ["a", "b", "c"]
        .iter()
        .map(|s| format!("t-{}-{s}", aws.unique))
        .collect();
    for (i, tenant) in tenants.iter().enumerate() {
        let body = gen_lines(&aws, tenant, "2026-11-24", 1500, 0.0, 20 + i as u64).concat();
        let key = raw_key(tenant, "2026-11-24", "form entries.ndjson");
        // The producer retries its upload: the same bytes twice, two notifications.
        put(&s3, &raw, &key, body.clone()).await;
        put(&s3, &raw, &key, body).await;
        aws.ok(&[
            "consent",
            "grant",
            "--tenant",
            tenant,
            "--dataset",
            "contacts",
        ]);
    }
    // An object a lifecycle rule archived before it was read: every read of it fails
    // (InvalidObjectState), so its message is poison.
    let archived = format!("t-{}-z", aws.unique);
    let body = gen_lines(&aws, &archived, "2026-11-24", 1500, 0.0, 29).concat();
    s3.put_object()
        .bucket(&raw)
        .key(raw_key(&archived, "2026-11-24", "archived.ndjson"))
        .storage_class(StorageClass::Glacier)
        .body(body.into())
        .send()
        .await
        .expect("upload archived object");
    aws.ok(&[
        "consent",
        "grant",
        "--tenant",
        &archived,
        "--dataset",
        "contacts",
    ]);

    let out = worker(&aws, &events.queue, Some(6))
        .output()
        .expect("worker");
    let stats = worker_stats(&out);
    assert_eq!(stats["published"], 3, "{stats}");

    let published = releases(&aws);
    let mut per_tenant: Vec<&str> = published
        .iter()
        .map(|r| r["tenant"].as_str().expect("tenant"))
        .collect();
    per_tenant.sort_unstable();
    assert_eq!(
        per_tenant, tenants,
        "each good partition released exactly once"
    );
    let dup = queried(
        &aws,
        "SELECT count(*) - count(DISTINCT event_id) AS dup FROM contacts",
    );
    assert_eq!(dup, ["0"]);

    let dead = drain(&sqs, &events.dlq).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("archived.ndjson"), "{}", dead[0]);
    let left = drain(&sqs, &events.queue).await;
    assert!(left.is_empty(), "every other message was deleted: {left:?}");
}

/// One fan-out run on fresh resources: `tenants` × 2 days of partitions, each of
/// `objects_per` objects, announced by the bucket, plus duplicates (re-uploads and
/// SNS-wrapped copies); `workers` processes drain the queue. Returns the drain time.
async fn fan_out(workers: usize, tenants: usize, objects_per: usize) -> Duration {
    let aws = AwsEnv::new(&emulator());
    aws.ok(&["setup"]);
    let events = notifications_to_a_queue(&aws, 50).await;
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let raw = aws.bucket("raw");
    let letters = "abcdefghijklmnopqrstuvwxyz".as_bytes();
    let mut partitions = BTreeSet::new();
    let mut duplicates = 0;
    for t in 0..tenants {
        let tenant = format!("t-{}-{}", aws.unique, letters[t] as char);
        aws.ok(&[
            "consent",
            "grant",
            "--tenant",
            &tenant,
            "--dataset",
            "contacts",
        ]);
        for dt in ["2026-11-24", "2026-11-25"] {
            partitions.insert((tenant.clone(), dt.to_owned()));
            let lines = gen_lines(&aws, &tenant, dt, 200 * objects_per as u64, 0.0, t as u64);
            let per = lines.len().div_ceil(objects_per);
            for (i, chunk) in lines.chunks(per).enumerate() {
                let key = raw_key(&tenant, dt, &format!("part-{}.ndjson", letters[i] as char));
                put(&s3, &raw, &key, chunk.concat()).await;
                if i == 0 {
                    // Duplicates: the same upload again, and an SNS-wrapped copy of its event.
                    put(&s3, &raw, &key, chunk.concat()).await;
                    let direct = serde_json::json!({"Records": [{
                        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                        "eventTime": "2026-11-24T12:00:00Z",
                        "s3": {"bucket": {"name": raw}, "object": {"key": key.replace('=', "%3D")}}
                    }]});
                    sqs.send_message()
                        .queue_url(&events.queue)
                        .message_body(
                            serde_json::json!({"Type": "Notification", "Message": direct.to_string()})
                                .to_string(),
                        )
                        .send()
                        .await
                        .expect("send duplicate");
                    duplicates += 2;
                }
            }
        }
    }
    let idle = 3;
    let started = Instant::now();
    let children: Vec<std::process::Child> = (0..workers)
        .map(|_| {
            worker(&aws, &events.queue, Some(idle))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawn worker")
        })
        .collect();
    let outputs: Vec<std::process::Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("worker output"))
        .collect();
    let wall = started.elapsed();
    let stats: Vec<serde_json::Value> = outputs.iter().map(worker_stats).collect();
    let published: u64 = stats
        .iter()
        .map(|s| s["published"].as_u64().expect("n"))
        .sum();
    let messages: u64 = stats
        .iter()
        .map(|s| s["messages"].as_u64().expect("n"))
        .sum();
    assert!(
        messages >= (partitions.len() * objects_per + duplicates) as u64,
        "every notification was received: {stats:?}"
    );
    assert_eq!(
        published,
        partitions.len() as u64,
        "{workers} workers: {stats:?}"
    );

    let all = releases(&aws);
    let released: BTreeSet<(String, String)> = all
        .iter()
        .map(|r| {
            assert_eq!(
                r["inputs"].as_array().map(Vec::len),
                Some(objects_per),
                "one release of all of a partition's objects: {r}"
            );
            (
                r["tenant"].as_str().expect("tenant").to_owned(),
                r["dt"].as_str().expect("dt").to_owned(),
            )
        })
        .collect();
    assert_eq!(all.len(), partitions.len(), "no partition released twice");
    assert_eq!(released, partitions);
    let records_out: u64 = all
        .iter()
        .map(|r| r["records_out"].as_u64().expect("records_out"))
        .sum();
    let counts = queried(
        &aws,
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM contacts",
    );
    assert_eq!(
        counts,
        [format!("{records_out} | {records_out}")],
        "each published record once"
    );
    assert!(drain(&sqs, &events.queue).await.is_empty(), "queue drained");
    assert!(
        drain(&sqs, &events.dlq).await.is_empty(),
        "nothing was poison"
    );
    // The last worker waited `idle` seconds for a message that never came.
    wall.saturating_sub(Duration::from_secs(idle))
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn four_workers_on_one_queue_release_two_hundred_objects_in_twenty_partitions_exactly_once() {
    let (tenants, objects_per) = (10, 10);
    let one = fan_out(1, tenants, objects_per).await;
    let four = fan_out(4, tenants, objects_per).await;
    let rate = |d: Duration| (2 * tenants) as f64 / d.as_secs_f64().max(1e-3);
    // A figure, not a pass mark: a 2-core machine running the emulator shares its cores
    // with the workers.
    eprintln!(
        "queue fan-out, {} partitions x {objects_per} objects: 1 worker {:.2} releases/s ({:.1} s), 4 workers {:.2} releases/s ({:.1} s)",
        2 * tenants,
        rate(one),
        one.as_secs_f64(),
        rate(four),
        four.as_secs_f64()
    );
}

/// A trial's outcome, comparable across backends: releases (dt, records out, suppressed),
/// published event ids, quarantined lines (their object named from `tenant=` on).
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    releases: BTreeSet<(String, u64, u64)>,
    event_ids: Vec<String>,
    quarantined: BTreeSet<String>,
}

fn normalized_quarantine_line(line: &str) -> String {
    let mut v: serde_json::Value = serde_json::from_str(line).expect("quarantine line");
    let object = v["object"].as_str().unwrap_or("");
    let from = object.find("tenant=").unwrap_or(0);
    v["object"] = serde_json::Value::String(object[from..].to_owned());
    v.to_string()
}

fn release_rows(releases: &[serde_json::Value], tenant: &str) -> BTreeSet<(String, u64, u64)> {
    releases
        .iter()
        .filter(|r| r["tenant"] == tenant)
        .map(|r| {
            (
                r["dt"].as_str().expect("dt").to_owned(),
                r["records_out"].as_u64().expect("records_out"),
                r["suppressed"].as_u64().expect("suppressed"),
            )
        })
        .collect()
}

/// What the uninterrupted embedded run makes of the same raw objects.
fn reference(objects: &[(String, Vec<u8>)], tenant: &str) -> Outcome {
    let env = Env::new();
    for (key, body) in objects {
        let path = env.path(&format!("raw/{key}"));
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, body).expect("raw object");
    }
    env.grant(tenant, "contacts");
    run_json(&env);
    let q = env.ok(&["query", "SELECT event_id FROM contacts ORDER BY event_id"]);
    Outcome {
        releases: release_rows(&env.releases(), tenant),
        event_ids: query_rows(&q),
        quarantined: walk(&env.path("quarantine"))
            .into_iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .expect("quarantine file")
                    .lines()
                    .map(normalized_quarantine_line)
                    .collect::<Vec<_>>()
            })
            .collect(),
    }
}

async fn observed(aws: &AwsEnv, s3: &aws_sdk_s3::Client, tenant: &str) -> Outcome {
    let bucket = aws.bucket("quarantine");
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("held/")
        .send()
        .await
        .expect("list quarantine");
    let mut quarantined = BTreeSet::new();
    for o in listed.contents.unwrap_or_default() {
        let key = o.key.expect("key");
        if !key.contains(tenant) {
            continue;
        }
        let body = s3
            .get_object()
            .bucket(&bucket)
            .key(&key)
            .send()
            .await
            .expect("get quarantine")
            .body
            .collect()
            .await
            .expect("quarantine body")
            .into_bytes();
        for line in String::from_utf8_lossy(&body).lines() {
            quarantined.insert(normalized_quarantine_line(line));
        }
    }
    Outcome {
        releases: release_rows(&releases(aws), tenant),
        event_ids: queried(
            aws,
            &format!("SELECT event_id FROM contacts WHERE tenant = '{tenant}' ORDER BY event_id"),
        ),
        quarantined,
    }
}

/// Every file of every catalog entry is in the curated bucket.
async fn no_dangling_entries(aws: &AwsEnv, s3: &aws_sdk_s3::Client, trial: u64) {
    for r in releases(aws) {
        for f in r["files"].as_array().expect("files") {
            let url = f["path"].as_str().expect("path");
            let (bucket, key) = url
                .strip_prefix("s3://")
                .and_then(|p| p.split_once('/'))
                .expect("an s3 URL");
            assert!(
                s3.head_object()
                    .bucket(bucket)
                    .key(key)
                    .send()
                    .await
                    .is_ok(),
                "trial {trial}: release {} names a missing file {url}",
                r["release_id"]
            );
        }
    }
}

fn lcg(seed: u64) -> u64 {
    seed.wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        >> 33
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn a_queue_worker_killed_at_random_points_and_restarted_publishes_each_record_once() {
    const TRIALS: u64 = 10;
    let aws = AwsEnv::new(&emulator());
    aws.ok(&["setup"]);
    // Killed workers' messages come back many times; none of them is poison.
    let events = notifications_to_a_queue(&aws, 50).await;
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);
    let raw = aws.bucket("raw");
    let mut killed_mid_work = 0;
    for trial in 0..TRIALS {
        let tenant = format!("t-{}-{}", aws.unique, (b'a' + trial as u8) as char);
        let mut objects = Vec::new();
        for dt in ["2026-11-24", "2026-11-25"] {
            let lines = gen_lines(&aws, &tenant, dt, 800, 0.03, trial + 100);
            for (i, chunk) in lines.chunks(lines.len().div_ceil(2)).enumerate() {
                let name = if i == 0 {
                    "first.ndjson"
                } else {
                    "second.ndjson"
                };
                objects.push((raw_key(&tenant, dt, name), chunk.concat()));
            }
        }
        let expected = reference(&objects, &tenant);
        assert_eq!(
            expected.releases.len(),
            2,
            "the reference publishes both days"
        );
        assert!(!expected.quarantined.is_empty(), "the data has bad lines");
        aws.ok(&[
            "consent",
            "grant",
            "--tenant",
            &tenant,
            "--dataset",
            "contacts",
        ]);
        for (key, body) in &objects {
            put(&s3, &raw, key, body.clone()).await;
        }

        // The kill lands at a random point before the first release is published (even
        // trials) or after it (odd ones), and never later than the worker's own log shows
        // the point reached: a delay alone raced the worker, which a fast runner finished.
        let delay = Duration::from_millis(lcg(trial + 7) % 1500);
        let (mut child, published, log) = spawn_logged(worker(&aws, &events.queue, None));
        let before_second = tokio::task::spawn_blocking(move || {
            if trial % 2 == 0 {
                // At the delay or the first release, whichever comes first.
                let _ = published.recv_timeout(delay);
                return true;
            }
            published
                .recv_timeout(Duration::from_secs(120))
                .expect("the first release within 120 s");
            // At a third of the delay after it, or the second release: only the former
            // is mid-work.
            published.recv_timeout(delay / 3).is_err()
        })
        .await
        .expect("join");
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        drop(log);
        no_dangling_entries(&aws, &s3, trial).await;
        if before_second && release_rows(&releases(&aws), &tenant).len() < 2 {
            killed_mid_work += 1;
        }

        // Restarted: the killed worker's lease expires, its messages come back.
        let out = worker(&aws, &events.queue, Some(5))
            .output()
            .expect("worker");
        worker_stats(&out);
        no_dangling_entries(&aws, &s3, trial).await;
        let got = observed(&aws, &s3, &tenant).await;
        assert_eq!(
            got.releases, expected.releases,
            "trial {trial} (kill after {delay:?})"
        );
        assert_eq!(
            got.event_ids, expected.event_ids,
            "trial {trial}: each good record once"
        );
        assert_eq!(
            got.quarantined, expected.quarantined,
            "trial {trial}: each bad one quarantined"
        );
    }
    eprintln!(
        "queue worker crash trials: {killed_mid_work}/{TRIALS} killed before both partitions were published"
    );
    assert!(
        killed_mid_work >= TRIALS / 2,
        "most kills must land before the work is done: {killed_mid_work}/{TRIALS}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn sigterm_stops_a_queue_worker_cleanly_and_a_restart_finishes_the_work() {
    let aws = AwsEnv::new(&emulator());
    aws.ok(&["setup"]);
    let events = notifications_to_a_queue(&aws, 50).await;
    let sdk = sdk(&aws.endpoint).await;
    let s3 = s3_client(&sdk);
    let tenant = format!("t-{}-s", aws.unique);
    aws.ok(&[
        "consent",
        "grant",
        "--tenant",
        &tenant,
        "--dataset",
        "contacts",
    ]);
    // Eight days, one message each: the signal is sent once the first is published, and
    // each release takes far longer than a signal takes to land, so most of the work
    // remains. (A fixed delay raced the worker: on a fast runner it had finished.)
    let days: Vec<String> = (21..29).map(|d| format!("2026-11-{d}")).collect();
    for (i, dt) in days.iter().enumerate() {
        let body = gen_lines(&aws, &tenant, dt, 1500, 0.0, 40 + i as u64).concat();
        put(
            &s3,
            &aws.bucket("raw"),
            &raw_key(&tenant, dt, "entries.ndjson"),
            body,
        )
        .await;
    }
    let (child, published_rx, log) = spawn_logged(worker(&aws, &events.queue, None));
    let seen = tokio::task::spawn_blocking(move || {
        published_rx.recv_timeout(Duration::from_secs(120)).is_ok()
    })
    .await
    .expect("join");
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("worker output");
    let log = log.join().expect("stderr reader");
    assert!(seen, "the worker published nothing within 120 s:\n{log}");
    // A clean exit with its report, not a death by signal.
    assert!(
        out.status.success(),
        "worker after SIGTERM: {}\nstderr: {log}",
        out.status
    );
    let stats = worker_stats(&out);
    let first = release_rows(&releases(&aws), &tenant).len();
    eprintln!(
        "SIGTERM after the first release: {first} of {} published, {stats}",
        days.len()
    );
    assert!(
        (1..days.len()).contains(&first),
        "SIGTERM must land while work remains (published {first}): {stats}"
    );
    no_dangling_entries(&aws, &s3, 0).await;

    let out = worker(&aws, &events.queue, Some(5))
        .output()
        .expect("worker");
    worker_stats(&out);
    let all = release_rows(&releases(&aws), &tenant);
    assert_eq!(all.len(), days.len(), "each day released once: {all:?}");
    let dup = queried(
        &aws,
        &format!(
            "SELECT count(*) - count(DISTINCT event_id) AS dup FROM contacts WHERE tenant = '{tenant}'"
        ),
    );
    assert_eq!(dup, ["0"]);
    assert!(
        drain(&aws_sdk_sqs::Client::new(&sdk), &events.queue)
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
#[cfg_attr(
    not(aws_emulator),
    ignore = "needs moto_server (STACKPRO_TEST_AWS_ENDPOINT)"
)]
async fn the_infra_stacks_deploy_on_the_emulator_and_a_worker_releases_what_their_bucket_announces()
{
    let endpoint = emulator();
    let mut aws = AwsEnv::new(&endpoint);
    let out = aws.env.path("stacks");
    let prefix = super::aws::unique("s");
    let infra = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra");
    let deployed = Command::new("python3")
        .arg(infra.join("emulator.py"))
        .args(["--endpoint", &endpoint, "--stack-prefix", &prefix, "--out"])
        .arg(&out)
        .output()
        .expect("python3 infra/emulator.py");
    assert!(
        deployed.status.success(),
        "infra/emulator.py failed:\n{}\n{}",
        String::from_utf8_lossy(&deployed.stdout),
        String::from_utf8_lossy(&deployed.stderr)
    );
    let outputs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("outputs.json")).expect("outputs.json"))
            .expect("outputs json");
    let lake = &outputs["stacks"][format!("{prefix}-lake")];
    let raw = lake["RawBucketName"]
        .as_str()
        .expect("raw bucket")
        .to_owned();
    let queue = outputs["queue_url"].as_str().expect("queue url").to_owned();
    let dlq = outputs["dead_letter_queue_url"]
        .as_str()
        .expect("dlq url")
        .to_owned();
    // The config the deployer wrote, as is: no `stackpro setup`, the stacks are enough.
    aws.config = out.join("stackpro.toml");

    let sdk = sdk(&endpoint).await;
    let s3 = s3_client(&sdk);
    let tenant = format!("t-{prefix}");
    aws.ok(&[
        "consent",
        "grant",
        "--tenant",
        &tenant,
        "--dataset",
        "contacts",
    ]);
    let body = gen_lines(&aws, &tenant, "2026-11-24", 1500, 0.02, 61).concat();
    put(
        &s3,
        &raw,
        &raw_key(&tenant, "2026-11-24", "leads.ndjson"),
        body,
    )
    .await;

    let out = worker(&aws, &queue, Some(5)).output().expect("worker");
    let stats = worker_stats(&out);
    assert_eq!(stats["published"], 1, "{stats}");
    let published = releases(&aws);
    assert_eq!(published.len(), 1, "{published:?}");
    assert_eq!(published[0]["tenant"], tenant.as_str());
    let n = queried(&aws, "SELECT count(*) AS n FROM contacts");
    assert_eq!(n, [published[0]["records_out"].to_string()]);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    assert!(drain(&sqs, &queue).await.is_empty(), "queue drained");
    assert!(drain(&sqs, &dlq).await.is_empty(), "nothing dead-lettered");
}
