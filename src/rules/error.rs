//! The one error type of the rule language: a message a person can act on, and where.

use std::fmt;

/// A byte range `start..end` in the rule's source text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// Returns the span covering bytes `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    /// Returns the smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Why a rule was refused, with the 1-based line and column of the first problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RuleError {
    /// What is wrong and, where possible, how to fix it.
    pub message: String,
    /// Line of the problem, counted from 1.
    pub line: u32,
    /// Column of the problem in characters, counted from 1.
    pub column: u32,
    /// The bytes of the source the problem is about.
    pub span: Span,
}

impl RuleError {
    /// Builds the error for `span` of `source`, computing its line and column.
    pub(crate) fn at(source: &str, span: Span, message: impl Into<String>) -> Self {
        let start = span.start.min(source.len());
        let before = source.get(..start).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        RuleError {
            message: message.into(),
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            span,
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {}, column {}",
            self.message, self.line, self.column
        )
    }
}

/// Returns the candidate closest to `word` by edit distance, if it is a plausible typo.
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lowered = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&lowered, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters_from_one() {
        let src = "a and\n  ébc";
        let at = src.find('b').unwrap();
        let err = RuleError::at(src, Span::new(at, at + 1), "x");
        assert_eq!((err.line, err.column), (2, 4));
        assert_eq!(RuleError::at(src, Span::new(0, 1), "x").column, 1);
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["count", "last_seen", "first_seen"];
        assert_eq!(did_you_mean("cnt", &names), Some("count"));
        assert_eq!(did_you_mean("lastseen", &names), Some("last_seen"));
        assert_eq!(did_you_mean("COUNT", &names), Some("count"));
        assert_eq!(did_you_mean("banana", &names), None);
    }
}
