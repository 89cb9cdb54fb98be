//! `chiso report` against a real `chiso up`: an approval made with
//! `chiso assess` shows in the province's progress once the projection
//! reflects its event, exports as CSV, and stays out of a commune's reach.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use chiso_proto::assessment::v1::{
    EventKind, WatchAssessmentEventsRequest, assessment_service_client::AssessmentServiceClient,
};
use chiso_server::BearerInterceptor;
use common::{BIN, Up};
use serde_json::Value;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Fills, submits, verifies and approves Thị trấn Thọ Xuân's 2023
/// assessment, every indicator met, as its commune, district and province.
fn approve_tho_xuan_2023(up: &Up, dir: &Path) {
    let set = json(&ok(up.client(
        dir,
        &["criteria", "show", "th-commune-2023", "--output", "json"],
    )));
    let mut csv = String::from("indicator_code,value,evidence_document\n");
    for ind in set["indicators"].as_array().unwrap() {
        let value = match ind["kind"].as_str().unwrap() {
            "yes_no" => "yes",
            "ratio" => "100/100",
            "count" => "5",
            kind => panic!("no value for a {kind} in this test"),
        };
        csv.push_str(&format!(
            "{},{value},12/BC-UBND\n",
            ind["code"].as_str().unwrap()
        ));
    }
    let values = dir.join("values.csv");
    std::fs::write(&values, csv).unwrap();
    let commune = Up::token(dir, &["submitter"], "15499", "xa-tt-tho-xuan");
    let district = Up::token(dir, &["reviewer"], "395", "huyen-tho-xuan");
    let province = Up::token(dir, &["approver"], "38", "so-tttt");
    let at = ["--unit", "15499", "--year", "2023"];
    let run = |verb: &str, extra: &[&str], token: &str| {
        let mut args = vec!["assess", verb];
        args.extend(at);
        args.extend(extra);
        args.extend(["--token", token]);
        ok(up.client(dir, &args))
    };
    run("set-values", &[values.to_str().unwrap()], &commune);
    run("submit", &[], &commune);
    run("verify", &[], &district);
    let out = run("approve", &[], &province);
    assert!(out.starts_with("approved:"), "{out}");
}

/// The sequence of the approval event of 15499's 2023 assessment, read from
/// the assessment service's event stream with a service token.
fn approval_sequence(up: &Up, dir: &Path) -> i64 {
    let token = Up::token(dir, &["service"], "VN", "report-cli-test");
    let url = up.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
        let mut api = AssessmentServiceClient::new(InterceptedService::new(
            channel,
            BearerInterceptor::new(&token).unwrap(),
        ));
        let mut events = api
            .watch_assessment_events(WatchAssessmentEventsRequest { after_sequence: 0 })
            .await
            .unwrap()
            .into_inner();
        loop {
            let event = tokio::time::timeout(Duration::from_secs(20), events.message())
                .await
                .expect("the approval event arrives")
                .unwrap()
                .expect("the stream stays open")
                .event
                .unwrap();
            if event.kind == EventKind::Approved as i32
                && event.unit_code == "15499"
                && event.year == 2023
            {
                return event.sequence;
            }
        }
    })
}

#[test]
fn an_approval_shows_in_the_reports_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let up = Up::start(dir);
    approve_tho_xuan_2023(&up, dir);
    let seq = approval_sequence(&up, dir);

    // Ask until the answer reflects the approval's event.
    let progress_args = [
        "report", "progress", "--scope", "38", "--year", "2023", "--output", "json",
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let progress = loop {
        let p = json(&ok(up.client(dir, &progress_args)));
        if p["reflects_sequence"].as_i64().unwrap() >= seq {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the reports never reflected event {seq}: {p}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let rows = progress["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 27, "a row per district-level unit of 2023");
    let tho_xuan = rows.iter().find(|r| r["code"] == "395").unwrap();
    assert_eq!(tho_xuan["name"], "Huyện Thọ Xuân");
    assert_eq!(tho_xuan["units"], 30);
    assert_eq!(tho_xuan["completed_in_year"], 1);
    assert_eq!(tho_xuan["statuses"]["approved"], 1);
    let totals = &progress["totals"];
    assert_eq!(
        (
            &totals["units"],
            &totals["completed_in_year"],
            &totals["completed_cumulative"]
        ),
        (&559.into(), &1.into(), &1.into())
    );
    let yearly = progress["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "th-qd969-communes-2023")
        .expect("the QĐ 969 target for 2023");
    assert_eq!(
        (
            &yearly["current"],
            &yearly["goal"],
            &yearly["met"],
            &yearly["gap"]
        ),
        (&1.0.into(), &132.0.into(), &false.into(), &131.0.into())
    );

    // The table for people: Vietnamese names, the targets, the event.
    let table = ok(up.client(
        dir,
        &["report", "progress", "--scope", "38", "--year", "2023"],
    ));
    assert!(table.contains("Huyện Thọ Xuân"), "{table}");
    assert!(
        table.contains("132 xã hoàn thành CĐS trong năm 2023"),
        "{table}"
    );
    assert!(table.contains("reflects event #"), "{table}");

    // The trend of the commune of 1/7/2025 reaches back to its predecessor.
    let trend = ok(up.client(
        dir,
        &[
            "report",
            "trend",
            "--unit",
            "15499",
            "--from",
            "2022",
            "--to",
            "2025",
            "--as-of",
            "2025-07-01",
        ],
    ));
    let row = trend
        .lines()
        .find(|l| l.contains("2023"))
        .unwrap_or_else(|| panic!("{trend}"));
    assert!(
        row.contains("Thị trấn Thọ Xuân") && row.contains("predecessor"),
        "{trend}"
    );

    // The streamed CSV, into a file.
    let file = dir.join("progress-2023.csv");
    let out = up.client(
        dir,
        &[
            "report",
            "export",
            "progress",
            "--scope",
            "38",
            "--year",
            "2023",
            "--out",
            file.to_str().unwrap(),
        ],
    );
    ok(out);
    let csv = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "code,name,units,completed_in_year,completed_cumulative,draft,submitted,verified,approved,returned"
    );
    assert_eq!(lines.len(), 1 + 27 + 1, "{csv}");
    assert!(
        lines.contains(&"395,Huyện Thọ Xuân,30,1,1,0,0,0,1,0"),
        "{csv}"
    );
    assert_eq!(*lines.last().unwrap(), ",total,559,1,1,0,0,0,1,0");

    // A commune's reader may not read the province.
    let reader = Up::token(dir, &["reader"], "15502", "xa-xuan-hong");
    let out = up.client(
        dir,
        &[
            "report", "progress", "--scope", "38", "--year", "2023", "--token", &reader,
        ],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    assert!(up.terminate().success());
}

#[test]
fn reporting_serve_dump_config_shows_the_assessment_url() {
    let out = Command::new(BIN)
        .args(["reporting", "serve", "--dump-config"])
        .env("CHISO_ASSESSMENT__URL", "http://chiso-assessment:50051")
        .env("CHISO_UNITS__URL", "http://chiso-units:50051")
        .output()
        .unwrap();
    let text = ok(out);
    assert!(text.contains("[assessment]"), "{text}");
    assert!(
        text.contains("url = \"http://chiso-assessment:50051\""),
        "{text}"
    );
    assert!(
        text.contains("url = \"http://chiso-units:50051\""),
        "{text}"
    );
}
