//! Problems found in a file a command reads (the criteria crate's
//! violations: a path, a line, a message), reported like compiler messages.

use std::path::Path;

use chiso_criteria::Violation;

use super::output::{Output, Table, counted};

/// Prints `problems` (to stderr as lines for people, to stdout as a table
/// for scripts) and returns the error the command ends with.
pub fn report_problems(file: &Path, problems: &[Violation], output: Output) -> anyhow::Error {
    if output == Output::Table {
        for p in problems {
            eprintln!("{}", p.render(file));
        }
    } else {
        let mut t = Table::new(&["file", "line", "path", "message"]);
        for p in problems {
            t.push(vec![
                file.display().to_string(),
                p.line.map(|l| l.to_string()).unwrap_or_default(),
                p.path.clone(),
                p.message.clone(),
            ]);
        }
        match t.render(output) {
            Ok(text) => print!("{text}"),
            Err(e) => return e,
        }
    }
    anyhow::anyhow!(
        "{}: {}",
        file.display(),
        counted(problems.len(), "problem", "problems")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problems_read_like_compiler_messages() {
        let p = Violation {
            line: Some(12),
            path: "groups[0].indicators[1].threshold".into(),
            message: "120 is outside 0–100".into(),
        };
        assert_eq!(
            p.render(Path::new("set.toml")),
            "set.toml:12: groups[0].indicators[1].threshold: 120 is outside 0–100"
        );
        let p = Violation {
            line: None,
            path: String::new(),
            message: "missing field `id`".into(),
        };
        assert_eq!(
            p.render(Path::new("set.toml")),
            "set.toml: missing field `id`"
        );
    }
}
