//! Paging: page sizes, and page tokens bound to the query they came from, so
//! that a token cannot be replayed against a different query.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::Violations;

/// The page size when a request asks for none.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// The most items one page holds.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The page size a request asks for: the default for 0, at most
/// [`MAX_PAGE_SIZE`]; a negative size is recorded as a violation of
/// `page_size`.
pub fn page_size(requested: i32, v: &mut Violations) -> usize {
    if requested < 0 {
        v.add("page_size", format!("{requested} is negative"));
    }
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n => (n.max(1) as usize).min(MAX_PAGE_SIZE),
    }
}

/// The page tokens of one query. On the wire a token is the query and the
/// last position, `query|position`, in unpadded URL-safe base64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    prefix: String,
}

impl PageToken {
    /// Tokens of the query described by `query` (every parameter that
    /// changes the answer, joined with `|`).
    pub fn for_query(query: impl std::fmt::Display) -> PageToken {
        PageToken {
            prefix: format!("{query}|"),
        }
    }

    /// The token that resumes after `position`.
    pub fn encode(&self, position: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}{position}", self.prefix))
    }

    /// The position `token` resumes after: `None` for the first page (an
    /// empty token) and for a token of another query, which is recorded as
    /// a violation of `page_token`.
    pub fn position(&self, token: &str, v: &mut Violations) -> Option<String> {
        if token.is_empty() {
            return None;
        }
        let position = URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix(&self.prefix).map(str::to_owned));
        if position.is_none() {
            v.add(
                "page_token",
                format!("{token:?} is not a token from this query"),
            );
        }
        position
    }

    /// The next page's token: the last item's position when there are more
    /// items, else empty.
    pub fn next(&self, more: bool, last: Option<String>) -> String {
        match (more, last) {
            (true, Some(position)) => self.encode(&position),
            _ => String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_resumes_only_its_own_query() {
        let q = PageToken::for_query("sets|3|2024|false");
        let token = q.encode("th-commune@2");
        let mut v = Violations::new();
        assert_eq!(q.position(&token, &mut v).as_deref(), Some("th-commune@2"));
        assert_eq!(q.position("", &mut v), None);
        assert!(v.is_empty());
        let other = PageToken::for_query("sets|3|2025|false");
        assert_eq!(other.position(&token, &mut v), None);
        assert_eq!(
            v.iter().collect::<Vec<_>>(),
            vec![(
                "page_token",
                format!("{token:?} is not a token from this query").as_str()
            )]
        );
    }

    #[test]
    fn the_wire_form_is_the_query_and_the_position() {
        let token = PageToken::for_query("history|15499|2024").encode("7");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(&token).unwrap(),
            b"history|15499|2024|7"
        );
    }

    #[test]
    fn page_sizes_default_and_clamp() {
        let mut v = Violations::new();
        assert_eq!(page_size(0, &mut v), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(5000, &mut v), MAX_PAGE_SIZE);
        assert_eq!(page_size(7, &mut v), 7);
        assert!(v.is_empty());
        page_size(-1, &mut v);
        assert_eq!(v.len(), 1);
    }
}
