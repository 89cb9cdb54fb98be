//! The `chiso` binary as a person uses it: `chiso up`, then client commands
//! against it, then SIGTERM.

mod common;

use std::process::Command;

use common::{BIN, Up};

#[test]
fn up_serves_the_client_commands_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path());

    let out = up.client(
        dir.path(),
        &[
            "units",
            "ls",
            "--parent",
            "395",
            "--as-of",
            "2022-06-30",
            "--output",
            "json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let units: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let units = units.as_array().unwrap();
    assert_eq!(units.len(), 30);
    assert!(units.iter().any(|u| u["name"] == "Thị trấn Thọ Xuân"));

    let out = up.client(
        dir.path(),
        &[
            "units",
            "ls",
            "--parent",
            "38",
            "--level",
            "commune",
            "--as-of",
            "2019-11-30",
        ],
    );
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("635 units as of 2019-11-30"), "{table}");

    let out = up.client(
        dir.path(),
        &[
            "units",
            "lineage",
            "14758",
            "--as-of",
            "2025-07-01",
            "--output",
            "csv",
        ],
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.contains("Phường Đông Thọ"), "{csv}");

    let out = up.client(dir.path(), &["units", "show", "99999"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("NotFound"));

    // A token from `chiso token issue` is accepted; a reader cannot import.
    let token = Command::new(BIN)
        .args([
            "token",
            "issue",
            "--role",
            "reader",
            "--scope",
            "38",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap();
    let snapshot = dir.path().join("snapshot.csv");
    std::fs::write(
        &snapshot,
        "code,name,kind,parent_code\n38,Tỉnh Thanh Hóa,Tỉnh,\n",
    )
    .unwrap();
    let out = up.client(
        dir.path(),
        &[
            "units",
            "import",
            snapshot.to_str().unwrap(),
            "--effective-date",
            "2026-01-01",
            "--validate-only",
            "--token",
            token.trim(),
        ],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("PermissionDenied"));

    let status = up.terminate();
    assert!(
        status.success(),
        "chiso up exits cleanly on SIGTERM: {status}"
    );

    // A second start finds the reference data loaded and changes nothing.
    let up = Up::start(dir.path());
    let out = up.client(
        dir.path(),
        &[
            "units",
            "ls",
            "--parent",
            "38",
            "--as-of",
            "2025-07-01",
            "--output",
            "csv",
        ],
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 167);
    assert!(up.terminate().success());
}

#[test]
fn dump_config_shows_layers_and_hides_passwords() {
    let out = Command::new(BIN)
        .args([
            "units",
            "serve",
            "--dump-config",
            "--listen",
            "0.0.0.0:6000",
        ])
        .env(
            "CHISO_DATABASE_URL",
            "postgres://chiso:s3cret@db:5432/units",
        )
        .env("CHISO_LOG__FORMAT", "json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("listen = \"0.0.0.0:6000\""), "{text}");
    assert!(text.contains("format = \"json\""), "{text}");
    assert!(
        text.contains("postgres://chiso:***@db:5432/units"),
        "{text}"
    );
    assert!(!text.contains("s3cret"));
}

#[test]
fn a_standalone_server_refuses_to_start_without_a_token_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["units", "serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("CHISO_AUTH__PUBLIC_KEY_FILE")
        .env_remove("CHISO_AUTH__HS256_SECRET_FILE")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token key configured"));
}
