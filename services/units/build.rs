//! Embeds the Thanh Hóa reference history (data/units/thanh-hoa) so the
//! binary can load it wherever it runs.

use std::{env, fs, path::PathBuf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?)
        .join("../../data/units/thanh-hoa")
        .canonicalize()?;
    let manifest = dir.join("history.csv");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut out = String::from("&[\n");
    let mut reader = csv::Reader::from_path(&manifest)?;
    for record in reader.records() {
        let record = record?;
        let (date, snapshot, lineage, source) = (&record[0], &record[1], &record[2], &record[3]);
        let lineage = if lineage.is_empty() {
            "None".to_owned()
        } else {
            format!(
                "Some(include_str!({:?}))",
                dir.join(lineage).display().to_string()
            )
        };
        out.push_str(&format!(
            "    ReferenceSnapshot {{ effective_date: {date:?}, rows: include_str!({:?}), lineage: {lineage}, source: {source:?} }},\n",
            dir.join(snapshot).display().to_string()
        ));
    }
    out.push(']');
    fs::write(
        PathBuf::from(env::var("OUT_DIR")?).join("thanh_hoa_history.rs"),
        out,
    )?;
    Ok(())
}
