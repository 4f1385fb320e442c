//! Splits rule text into tokens on demand; the parser says which kind of name it expects.
//!
//! Names come in two flavours. In an expression, `-` is always the minus operator, so
//! `now-7d` reads as `now - 7d`. In an activity position (`count(...)`), a name may
//! contain `-` as RULES.md's NAME allows (`count(sign-up)`).

use crate::domain::{DAY_MS, HOUR_MS, MINUTE_MS, SECOND_MS, WEEK_MS};

use super::ast::CmpOp;
use super::error::{RuleError, Span};

/// One token of rule text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Token {
    Name(String),
    String(String),
    Number(f64),
    Duration(i64),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Cmp(CmpOp),
    End,
}

/// Which characters a name may hold at this position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NameMode {
    Expression,
    Activity,
}

/// A cursor over the source that yields one token at a time.
pub(crate) struct Lexer<'s> {
    source: &'s str,
    position: usize,
}

impl<'s> Lexer<'s> {
    pub(crate) fn new(source: &'s str) -> Self {
        Lexer {
            source,
            position: 0,
        }
    }

    /// Returns the byte offset the next token would start at (after whitespace and comments).
    pub(crate) fn offset(&self) -> usize {
        self.position
    }

    /// Moves the cursor back to `offset`, so a peeked token can be read again in another mode.
    pub(crate) fn rewind(&mut self, offset: usize) {
        self.position = offset;
    }

    /// Reads the next token and its span.
    pub(crate) fn next_token(&mut self, mode: NameMode) -> Result<(Token, Span), RuleError> {
        self.skip_blanks();
        let start = self.position;
        let rest = &self.source[start..];
        let Some(c) = rest.chars().next() else {
            return Ok((Token::End, Span::new(start, start)));
        };
        let token = match c {
            '(' => self.single(Token::LParen),
            ')' => self.single(Token::RParen),
            '[' => self.single(Token::LBracket),
            ']' => self.single(Token::RBracket),
            ',' => self.single(Token::Comma),
            '+' => self.single(Token::Plus),
            '-' => self.single(Token::Minus),
            '"' => self.string()?,
            '0'..='9' => self.number()?,
            c if c.is_ascii_alphabetic() || c == '_' => self.name(mode),
            '=' | '!' | '<' | '>' => self.operator()?,
            '&' | '|' => {
                let hint = if c == '&' { "and" } else { "or" };
                return Err(self.error_here(
                    start,
                    c.len_utf8(),
                    format!("unexpected \"{c}\" — write \"{hint}\""),
                ));
            }
            other => {
                return Err(self.error_here(
                    start,
                    other.len_utf8(),
                    format!("unexpected character \"{other}\""),
                ))
            }
        };
        Ok((token, Span::new(start, self.position)))
    }

    fn skip_blanks(&mut self) {
        loop {
            let rest = &self.source[self.position..];
            let trimmed = rest.trim_start();
            self.position += rest.len() - trimmed.len();
            if trimmed.starts_with('#') {
                let line_end = trimmed.find('\n').unwrap_or(trimmed.len());
                self.position += line_end;
            } else {
                return;
            }
        }
    }

    fn single(&mut self, token: Token) -> Token {
        self.position += 1;
        token
    }

    fn error_here(&self, start: usize, len: usize, message: String) -> RuleError {
        RuleError::at(self.source, Span::new(start, start + len), message)
    }

    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'s str {
        let start = self.position;
        let rest = &self.source[start..];
        let len = rest.find(|c: char| !keep(c)).unwrap_or(rest.len());
        self.position += len;
        &self.source[start..start + len]
    }

    fn name(&mut self, mode: NameMode) -> Token {
        let text = self.take_while(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '.' | ':')
                || (c == '-' && mode == NameMode::Activity)
        });
        Token::Name(text.to_owned())
    }

    fn operator(&mut self) -> Result<Token, RuleError> {
        let start = self.position;
        let rest = &self.source[start..];
        let (op, len) = if rest.starts_with("==") {
            (CmpOp::Eq, 2)
        } else if rest.starts_with("!=") {
            (CmpOp::Ne, 2)
        } else if rest.starts_with("<=") {
            (CmpOp::Le, 2)
        } else if rest.starts_with(">=") {
            (CmpOp::Ge, 2)
        } else if rest.starts_with('<') {
            (CmpOp::Lt, 1)
        } else if rest.starts_with('>') {
            (CmpOp::Gt, 1)
        } else if rest.starts_with('=') {
            return Err(self.error_here(
                start,
                1,
                "unexpected \"=\" — write \"==\" to compare".into(),
            ));
        } else {
            return Err(self.error_here(
                start,
                1,
                "unexpected \"!\" — write \"not\" or \"!=\"".into(),
            ));
        };
        self.position += len;
        Ok(Token::Cmp(op))
    }

    fn string(&mut self) -> Result<Token, RuleError> {
        let start = self.position;
        let mut value = String::new();
        let mut chars = self.source[start + 1..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.position = start + 1 + i + 1;
                    return Ok(Token::String(value));
                }
                '\\' => match chars.next() {
                    Some((_, escaped @ ('"' | '\\'))) => value.push(escaped),
                    Some((j, other)) => {
                        return Err(self.error_here(
                            start + 1 + i,
                            1 + j - i,
                            format!(
                                "unknown escape \"\\{other}\" — only \\\" and \\\\ are allowed"
                            ),
                        ))
                    }
                    None => break,
                },
                other => value.push(other),
            }
        }
        Err(self.error_here(
            start,
            self.source.len() - start,
            "unterminated string — add the closing \"".into(),
        ))
    }

    fn number(&mut self) -> Result<Token, RuleError> {
        let start = self.position;
        let digits = self.take_while(|c| c.is_ascii_digit());
        let rest = &self.source[self.position..];
        if rest.starts_with('.') && rest[1..].starts_with(|c: char| c.is_ascii_digit()) {
            self.position += 1;
            self.take_while(|c| c.is_ascii_digit());
            return self.finite_number(start);
        }
        let unit = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
        if unit.is_empty() {
            return self.finite_number(start);
        }
        let scale = match unit {
            "s" => SECOND_MS,
            "m" => MINUTE_MS,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => WEEK_MS,
            _ => {
                return Err(self.error_here(
                    start + digits.len(),
                    unit.len(),
                    format!("unknown duration unit \"{unit}\" — use s, m, h, d or w, like 30d"),
                ))
            }
        };
        digits
            .parse::<i64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .map(Token::Duration)
            .ok_or_else(|| {
                self.error_here(start, self.position - start, "duration is too long".into())
            })
    }

    fn finite_number(&self, start: usize) -> Result<Token, RuleError> {
        let text = &self.source[start..self.position];
        match text.parse::<f64>() {
            Ok(n) if n.is_finite() => Ok(Token::Number(n)),
            _ => Err(self.error_here(start, text.len(), "number is too large".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str, mode: NameMode) -> Vec<Token> {
        let mut lexer = Lexer::new(src);
        let mut out = Vec::new();
        loop {
            let (token, _) = lexer.next_token(mode).unwrap();
            if token == Token::End {
                return out;
            }
            out.push(token);
        }
    }

    #[test]
    fn reads_every_kind_of_token() {
        let got = tokens(
            "count(page_viewed, 30d) >= 10 # comment\n and \"a\\\"b\" != 2.5 ( ] [ ) , + <",
            NameMode::Expression,
        );
        assert_eq!(
            got,
            vec![
                Token::Name("count".into()),
                Token::LParen,
                Token::Name("page_viewed".into()),
                Token::Comma,
                Token::Duration(30 * DAY_MS),
                Token::RParen,
                Token::Cmp(CmpOp::Ge),
                Token::Number(10.0),
                Token::Name("and".into()),
                Token::String("a\"b".into()),
                Token::Cmp(CmpOp::Ne),
                Token::Number(2.5),
                Token::LParen,
                Token::RBracket,
                Token::LBracket,
                Token::RParen,
                Token::Comma,
                Token::Plus,
                Token::Cmp(CmpOp::Lt),
            ]
        );
    }

    #[test]
    fn minus_is_an_operator_in_expressions_and_a_name_char_in_activities() {
        let expr = tokens("now-7d", NameMode::Expression);
        assert_eq!(
            expr,
            vec![
                Token::Name("now".into()),
                Token::Minus,
                Token::Duration(7 * DAY_MS)
            ]
        );
        let activity = tokens("sign-up", NameMode::Activity);
        assert_eq!(activity, vec![Token::Name("sign-up".into())]);
    }

    #[test]
    fn every_duration_unit_scales() {
        let got = tokens("45s 15m 12h 30d 2w", NameMode::Expression);
        let want = [
            45 * SECOND_MS,
            15 * MINUTE_MS,
            12 * HOUR_MS,
            30 * DAY_MS,
            2 * WEEK_MS,
        ];
        assert_eq!(got, want.map(Token::Duration).to_vec());
    }

    #[test]
    fn explains_bad_characters() {
        let cases = [
            ("a & b", "unexpected \"&\" — write \"and\"", 3),
            ("a = 1", "unexpected \"=\" — write \"==\" to compare", 3),
            (
                "30days",
                "unknown duration unit \"days\" — use s, m, h, d or w, like 30d",
                3,
            ),
            ("\"abc", "unterminated string — add the closing \"", 1),
            (
                "\"a\\n\"",
                "unknown escape \"\\n\" — only \\\" and \\\\ are allowed",
                3,
            ),
            ("a @", "unexpected character \"@\"", 3),
        ];
        for (src, message, column) in cases {
            let mut lexer = Lexer::new(src);
            let err = loop {
                match lexer.next_token(NameMode::Expression) {
                    Ok((Token::End, _)) => panic!("no error for {src}"),
                    Ok(_) => {}
                    Err(e) => break e,
                }
            };
            assert_eq!(
                (err.message.as_str(), err.column),
                (message, column),
                "{src}"
            );
        }
    }
}
