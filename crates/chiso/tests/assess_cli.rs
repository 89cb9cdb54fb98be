//! `chiso criteria` and `chiso assess` as the province's staff and a Thọ Xuân
//! commune use them, against a real `chiso up`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{BIN, Up};
use serde_json::Value;

const CRITERIA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../services/assessment/criteria"
);

fn shipped(name: &str) -> String {
    std::fs::read_to_string(Path::new(CRITERIA).join(name)).unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The output of a command that must succeed.
fn ok(out: Output) -> String {
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

/// The stderr of a command that must fail.
fn fails(out: Output) -> String {
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "expected a failure\nstdout:\n{stdout}"
    );
    stderr
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// 1-based number of the first line starting with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix:?}"))
        + 1
}

/// `chiso criteria validate` without a server.
fn validate_here(file: &Path) -> Output {
    Command::new(BIN)
        .args(["criteria", "validate"])
        .arg(file)
        .output()
        .unwrap()
}

fn indicator<'a>(assessment: &'a Value, code: &str) -> &'a Value {
    assessment["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {assessment}"))
}

#[test]
fn criteria_files_are_checked_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let good = Path::new(CRITERIA).join("th-commune-2023.toml");
    let out = ok(validate_here(&good));
    assert!(out.contains("no problems"), "{out}");
    assert!(out.contains("th-commune-2023 v1"), "{out}");
    assert!(out.contains("37 indicators"), "{out}");
    let summary = json(&ok(Command::new(BIN)
        .args(["criteria", "validate", "--output", "json"])
        .arg(&good)
        .output()
        .unwrap()));
    let groups: Vec<_> = summary["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["code"].as_str().unwrap(),
                g["indicators"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, [("CQS", 11), ("KTS", 6), ("XHS", 12), ("HTS", 8)]);
    assert_eq!(summary["completion"]["all_mandatory"], true);

    // Two problems the checks find, each at its line.
    let broken_text = shipped("th-commune-2022.toml")
        .replacen("years = [2022]", "years = [20223]", 1)
        .replacen("max_points = 20", "max_points = 15", 1);
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, &broken_text).unwrap();
    let stderr = fails(validate_here(&broken));
    let file = broken.display();
    let years = line_of(&broken_text, "years =");
    let options = line_of(&broken_text, "options = [");
    assert!(
        stderr.contains(&format!(
            "{file}:{years}: years[0]: 20223 is outside 2000–2100"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "{file}:{options}: groups[0].indicators[0].options[0].points: 20 is more than"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("2 problems"), "{stderr}");

    // A misspelt field, found while reading, here and by the server alike.
    let typo_text = shipped("th-commune-2022.toml").replacen("met_at = 4", "meet_at = 4", 1);
    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, &typo_text).unwrap();
    let expected = format!(
        "{}:{}: groups[0].indicators[1].meet_at: unknown field `meet_at`",
        typo.display(),
        line_of(&typo_text, "meet_at")
    );
    let stderr = fails(validate_here(&typo));
    assert!(stderr.contains(&expected), "{stderr}");

    let up = Up::start(dir.path());
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let stderr = fails(up.client(
        dir.path(),
        &["criteria", "validate", "--remote", &path(&typo)],
    ));
    assert!(stderr.contains(&expected), "{stderr}");
    let stderr = fails(up.client(
        dir.path(),
        &["criteria", "validate", "--remote", &path(&broken)],
    ));
    assert!(
        stderr.contains(&format!("{file}:{years}: years[0]: 20223")),
        "{stderr}"
    );
    let out = ok(up.client(
        dir.path(),
        &["criteria", "validate", "--remote", &path(&good)],
    ));
    assert!(out.contains("th-commune-2023 v1"), "{out}");

    // Publishing a new set: a copy of the 2023 set for 2026.
    let new_text = shipped("th-commune-2023.toml")
        .replacen("id = \"th-commune-2023\"", "id = \"th-commune-2026\"", 1)
        .replacen("years = [2023, 2024, 2025]", "years = [2026]", 1);
    let new = dir.path().join("th-commune-2026.toml");
    std::fs::write(&new, &new_text).unwrap();
    let reader = Up::token(dir.path(), &["reader"], "38", "so-tttt");
    let stderr = fails(up.client(
        dir.path(),
        &["criteria", "publish", &path(&new), "--token", &reader],
    ));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    let out = ok(up.client(dir.path(), &["criteria", "publish", &path(&new)]));
    assert!(out.contains("published th-commune-2026 v1"), "{out}");
    // Again: a safe retry.
    let out = ok(up.client(dir.path(), &["criteria", "publish", &path(&new)]));
    assert!(out.contains("already published"), "{out}");
    // A changed file under the same version is refused.
    let changed = dir.path().join("changed.toml");
    std::fs::write(
        &changed,
        new_text.replacen("version = 1", "version = 1\n# edited", 1),
    )
    .unwrap();
    let stderr = fails(up.client(dir.path(), &["criteria", "publish", &path(&changed)]));
    assert!(stderr.contains("FailedPrecondition"), "{stderr}");
    assert!(stderr.contains("create version 2"), "{stderr}");

    let listed = json(&ok(up.client(
        dir.path(),
        &[
            "criteria", "ls", "--year", "2026", "--level", "commune", "--output", "json",
        ],
    )));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], "th-commune-2026");
    assert_eq!(listed[0]["state"], "published");
    let shown = json(&ok(up.client(
        dir.path(),
        &["criteria", "show", "th-commune-2026", "--output", "json"],
    )));
    assert_eq!(shown["indicators"].as_array().unwrap().len(), 37);
    let kts01 = indicator(&shown, "KTS.01");
    assert_eq!(kts01["requirement"], "≥ 60%");
    assert_eq!(kts01["mandatory"], "yes");
    let toml = ok(up.client(
        dir.path(),
        &["criteria", "show", "th-commune-2026", "--toml"],
    ));
    assert_eq!(toml, new_text);
    assert!(up.terminate().success());
}

#[test]
fn a_commune_reports_and_its_district_returns_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let up = Up::start(dir.path());
    let commune = Up::token(
        dir.path(),
        &["submitter", "reader"],
        "15499",
        "xa-tt-tho-xuan",
    );
    let district = Up::token(dir.path(), &["reviewer", "reader"], "395", "huyen-tho-xuan");
    let neighbour = Up::token(
        dir.path(),
        &["submitter", "reader"],
        "15502",
        "xa-xuan-hong",
    );
    let as_commune = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--token", &commune]);
        up.client(dir.path(), &all)
    };
    let at = ["--unit", "15499", "--year", "2023"];

    // A values file: every indicator met but the non-cash electricity share.
    let set = json(&ok(up.client(
        dir.path(),
        &["criteria", "show", "th-commune-2023", "--output", "json"],
    )));
    let mut csv =
        String::from("indicator_code,value,evidence_document,evidence_link,evidence_note\n");
    for ind in set["indicators"].as_array().unwrap() {
        let code = ind["code"].as_str().unwrap();
        let value = match (code, ind["kind"].as_str().unwrap()) {
            ("KTS.01", _) => "52/100",
            (_, "yes_no") => "yes",
            (_, "ratio") => "100/100",
            (_, "count") => "5",
            (_, kind) => panic!("no value for a {kind} in this test"),
        };
        csv.push_str(&format!(
            "{code},{value},12/BC-UBND,,\"báo cáo năm, quý IV\"\n"
        ));
    }
    let values = dir.path().join("values.csv");
    std::fs::write(&values, &csv).unwrap();
    let values = values.to_str().unwrap();

    let set_values = |file: &str, extra: &[&str]| {
        let mut args = vec!["assess", "set-values"];
        args.extend(at);
        args.push(file);
        args.extend(extra);
        as_commune(&args)
    };
    let first = json(&ok(set_values(values, &["--output", "json"])));
    assert_eq!(first["status"], "draft");
    assert_eq!(first["criteria_set_id"], "th-commune-2023");
    assert_eq!(first["complete"], false);
    assert_eq!(first["failing"], serde_json::json!(["KTS.01"]));
    assert_eq!(first["total_points"], 36.0);
    let kts01 = indicator(&first, "KTS.01");
    assert_eq!(kts01["value"], "52/100");
    assert_eq!(kts01["met"], false);
    assert!(
        kts01["shortfall"].as_str().unwrap().contains("60"),
        "{kts01}"
    );
    assert_eq!(
        indicator(&first, "CQS.01")["evidence"]["note"],
        "báo cáo năm, quý IV"
    );
    // The same file again is a retry: the same answer, nothing written twice.
    let again = json(&ok(set_values(values, &["--output", "json"])));
    assert_eq!(again["etag"], first["etag"]);

    // Bad rows are named by their line, whether found here or by the server,
    // and nothing of them is written.
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "indicator_code,value,evidence_document,evidence_link,evidence_note\n\
         CQS.01,có lẽ,1/BC,,\n\
         NO.SUCH,yes,1/BC,,\n",
    )
    .unwrap();
    let stderr = fails(set_values(bad.to_str().unwrap(), &[]));
    let file = bad.display();
    assert!(
        stderr.contains(&format!("{file}:2: CQS.01: \"có lẽ\" is not yes or no")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:3: NO.SUCH: not an indicator")),
        "{stderr}"
    );
    let bad = dir.path().join("bad-on-server.csv");
    std::fs::write(
        &bad,
        "indicator_code,value,evidence_document\n\
         KTS.01,120/100,1/BC\n\
         CQS.03,50/100,\n",
    )
    .unwrap();
    let stderr = fails(set_values(bad.to_str().unwrap(), &[]));
    let file = bad.display();
    let line = |prefix: String| {
        stderr
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {stderr}"))
            .to_owned()
    };
    // The server names the field inside the value (e.g. its numerator).
    assert!(
        line(format!("{file}:2: KTS.01 ")).contains("120"),
        "{stderr}"
    );
    assert!(
        line(format!("{file}:3: CQS.03 evidence: ")).contains("evidence"),
        "{stderr}"
    );

    // A neighbour can neither read nor write Thọ Xuân's report.
    let mut show = vec!["assess", "show"];
    show.extend(at);
    let mut as_neighbour = show.clone();
    as_neighbour.extend(["--token", &neighbour]);
    let stderr = fails(up.client(dir.path(), &as_neighbour));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");
    let mut args = vec!["assess", "set-values"];
    args.extend(at);
    args.extend([values, "--token", &neighbour]);
    let stderr = fails(up.client(dir.path(), &args));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");

    // The fix, checked first, then written.
    let fixed = dir.path().join("fixed.csv");
    std::fs::write(
        &fixed,
        "\u{feff}indicator_code,value,evidence_document,evidence_link,evidence_note\n\
         KTS.01,61/100,45/BC-UBND,,\n",
    )
    .unwrap();
    let fixed = fixed.to_str().unwrap();
    let checked = ok(set_values(fixed, &["--validate-only"]));
    assert!(checked.contains("nothing was written"), "{checked}");
    let mut show_json = show.clone();
    show_json.extend(["--output", "json"]);
    let now = json(&ok(as_commune(&show_json)));
    assert_eq!(now["complete"], false);
    let now = json(&ok(set_values(fixed, &["--output", "json"])));
    assert_eq!(now["complete"], true);
    assert_eq!(now["total_points"], 37.0);
    let shown = json(&ok(as_commune(&show_json)));
    assert_eq!(indicator(&shown, "KTS.01")["value"], "61/100");
    let table = ok(as_commune(&show));
    assert!(table.contains("37/37 points · complete"), "{table}");

    // Submit over what was read; the commune cannot verify its own report.
    let etag = shown["etag"].as_str().unwrap();
    let mut submit = vec!["assess", "submit"];
    submit.extend(at);
    let mut with_etag = submit.clone();
    with_etag.extend(["--etag", etag]);
    let out = ok(as_commune(&with_etag));
    assert!(out.starts_with("submitted:"), "{out}");
    let stderr = fails(as_commune(&submit));
    assert!(stderr.contains("FailedPrecondition"), "{stderr}");
    let mut verify = vec!["assess", "verify"];
    verify.extend(at);
    let stderr = fails(as_commune(&verify));
    assert!(stderr.contains("PermissionDenied"), "{stderr}");

    // The district returns it with a reason.
    let reason = "thiếu văn bản chứng minh camera an ninh";
    let mut back = vec!["assess", "return"];
    back.extend(at);
    back.extend(["--reason", reason, "--output", "json", "--token", &district]);
    let returned = json(&ok(up.client(dir.path(), &back)));
    assert_eq!(returned["status"], "returned");
    assert_eq!(returned["reason"], reason);
    let listed = json(&ok(up.client(
        dir.path(),
        &[
            "assess", "ls", "--scope", "395", "--year", "2023", "--output", "json", "--token",
            &district,
        ],
    )));
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["unit"], "15499");
    assert_eq!(listed[0]["status"], "returned");

    // The history shows each value once, the fix, and the return's reason.
    let mut history = vec!["assess", "history"];
    history.extend(at);
    let mut history_json = history.clone();
    history_json.extend(["--output", "json"]);
    let entries = json(&ok(as_commune(&history_json)));
    let entries = entries.as_array().unwrap();
    let values_written = entries.iter().filter(|e| e["action"] == "value").count();
    assert_eq!(values_written, 38, "37 values, then the fix: {entries:?}");
    let fix = entries
        .iter()
        .rfind(|e| e["indicator"] == "KTS.01")
        .unwrap();
    assert_eq!(fix["old"], "52/100 [12/BC-UBND]");
    assert_eq!(fix["new"], "61/100 [45/BC-UBND]");
    assert_eq!(fix["actor"], "xa-tt-tho-xuan");
    let last = entries.last().unwrap();
    assert_eq!(last["action"], "return");
    assert_eq!(last["actor"], "huyen-tho-xuan");
    assert_eq!(last["reason"], reason);
    assert_eq!(
        (&last["old"], &last["new"]),
        (&"submitted".into(), &"returned".into())
    );
    let table = ok(as_commune(&history));
    assert!(table.contains("submitted → returned"), "{table}");
    assert!(table.contains(reason), "{table}");

    assert!(up.terminate().success());
}
