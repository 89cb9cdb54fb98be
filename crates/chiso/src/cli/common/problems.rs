//! Problems found in a file a command reads, reported like compiler
//! messages.

use std::path::Path;

use super::output::{Output, Table, counted};

/// One problem in a file, as `FILE:LINE: path: message`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: Option<usize>,
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn render(&self, file: &Path) -> String {
        let mut text = file.display().to_string();
        if let Some(line) = self.line {
            text.push_str(&format!(":{line}"));
        }
        text.push_str(": ");
        if !self.path.is_empty() {
            text.push_str(&self.path);
            text.push_str(": ");
        }
        text.push_str(&self.message);
        text
    }
}

/// Prints `problems` (to stderr as lines for people, to stdout as a table
/// for scripts) and returns the error the command ends with.
pub fn report_problems(file: &Path, problems: &[Problem], output: Output) -> anyhow::Error {
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
        let p = Problem {
            line: Some(12),
            path: "groups[0].indicators[1].threshold".into(),
            message: "120 is outside 0–100".into(),
        };
        assert_eq!(
            p.render(Path::new("set.toml")),
            "set.toml:12: groups[0].indicators[1].threshold: 120 is outside 0–100"
        );
        let p = Problem {
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
