//! Recursive-descent parser from rule text to the syntax tree, enforcing the size limits.
//!
//! It checks syntax only; types and windows are checked by `check`.

use super::ast::{ArithOp, Attribute, Expr, ExprKind, Literal, Spanned};
use super::error::{did_you_mean, RuleError, Span};
use super::lexer::{Lexer, NameMode, Token};
use super::Limits;

const FUNCTIONS: [&str; 3] = ["count", "last_seen", "first_seen"];
const VALUES: [&str; 9] = [
    "country",
    "region",
    "device_type",
    "traits",
    "now",
    "true",
    "false",
    "not",
    "count",
];
const KEYWORDS: [&str; 4] = ["and", "or", "not", "in"];

/// Parses `source` into a syntax tree, or returns the first problem.
pub fn parse(source: &str, limits: &Limits) -> Result<Expr, RuleError> {
    if let Some((offset, _)) = source.char_indices().nth(limits.max_chars) {
        return Err(RuleError::at(
            source,
            Span::new(offset, offset + 1),
            format!("rule is too long: at most {} characters", limits.max_chars),
        ));
    }
    let mut parser = Parser {
        source,
        lexer: Lexer::new(source),
        peeked: None,
        nodes: 0,
        depth: 0,
        limits,
    };
    let (token, span) = parser.peek()?;
    if token == Token::End {
        return Err(parser.error(
            span,
            "rule is empty — write a condition like count(page_viewed) >= 1",
        ));
    }
    let expr = parser.or()?;
    match parser.peek()? {
        (Token::End, _) => Ok(expr),
        (Token::RParen, span) => Err(parser.error(span, "unexpected \")\" — no \"(\" to close")),
        (token, span) => Err(parser.error(
            span,
            format!(
                "unexpected {} after a complete condition — join conditions with \"and\" or \"or\"",
                describe(&token)
            ),
        )),
    }
}

struct Parser<'s, 'l> {
    source: &'s str,
    lexer: Lexer<'s>,
    peeked: Option<(Token, Span, NameMode)>,
    nodes: usize,
    depth: usize,
    limits: &'l Limits,
}

/// Names a token for an error message.
fn describe(token: &Token) -> String {
    match token {
        Token::Name(name) => format!("\"{name}\""),
        Token::String(s) => format!("the string \"{s}\""),
        Token::Number(n) => format!("the number {n}"),
        Token::Duration(ms) => format!("the duration {}", super::print::duration(*ms)),
        Token::LParen => "\"(\"".into(),
        Token::RParen => "\")\"".into(),
        Token::LBracket => "\"[\"".into(),
        Token::RBracket => "\"]\"".into(),
        Token::Comma => "\",\"".into(),
        Token::Plus => "\"+\"".into(),
        Token::Minus => "\"-\"".into(),
        Token::Cmp(op) => format!("\"{}\"", op.symbol()),
        Token::End => "the end of the rule".into(),
    }
}

impl Parser<'_, '_> {
    fn error(&self, span: Span, message: impl Into<String>) -> RuleError {
        RuleError::at(self.source, span, message)
    }

    fn peek_in(&mut self, mode: NameMode) -> Result<(Token, Span), RuleError> {
        if let Some((token, span, peeked_mode)) = &self.peeked {
            if *peeked_mode == mode {
                return Ok((token.clone(), *span));
            }
            self.lexer.rewind(span.start);
        }
        let (token, span) = self.lexer.next_token(mode)?;
        self.peeked = Some((token.clone(), span, mode));
        Ok((token, span))
    }

    fn peek(&mut self) -> Result<(Token, Span), RuleError> {
        self.peek_in(NameMode::Expression)
    }

    fn bump(&mut self) {
        self.peeked = None;
    }

    fn next(&mut self) -> Result<(Token, Span), RuleError> {
        let next = self.peek()?;
        self.bump();
        Ok(next)
    }

    fn at_keyword(&mut self, keyword: &str) -> Result<Option<Span>, RuleError> {
        Ok(match self.peek()? {
            (Token::Name(name), span) if name == keyword => Some(span),
            _ => None,
        })
    }

    fn expect(&mut self, want: Token, message: &str) -> Result<Span, RuleError> {
        let (token, span) = self.peek()?;
        if token == want {
            self.bump();
            Ok(span)
        } else {
            Err(self.error(span, format!("{message}, found {}", describe(&token))))
        }
    }

    fn node(&mut self, kind: ExprKind, span: Span) -> Result<Expr, RuleError> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(self.error(
                span,
                format!("rule is too large: at most {} parts", self.limits.max_nodes),
            ));
        }
        Ok(Expr { kind, span })
    }

    fn nest(&mut self, span: Span) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(self.error(
                span,
                format!(
                    "rule is nested too deeply: at most {} levels",
                    self.limits.max_depth
                ),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        self.chain("or", Self::and, ExprKind::Or)
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        self.chain("and", Self::unary, ExprKind::And)
    }

    fn chain(
        &mut self,
        keyword: &str,
        item: fn(&mut Self) -> Result<Expr, RuleError>,
        build: fn(Vec<Expr>) -> ExprKind,
    ) -> Result<Expr, RuleError> {
        let first = item(self)?;
        if self.at_keyword(keyword)?.is_none() {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.at_keyword(keyword)?.is_some() {
            self.bump();
            items.push(item(self)?);
        }
        let span = items[0].span.to(items[items.len() - 1].span);
        self.node(build(items), span)
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        let Some(not_span) = self.at_keyword("not")? else {
            return self.compare();
        };
        self.bump();
        self.nest(not_span)?;
        let inner = self.unary()?;
        self.depth -= 1;
        let span = not_span.to(inner.span);
        self.node(ExprKind::Not(Box::new(inner)), span)
    }

    fn compare(&mut self) -> Result<Expr, RuleError> {
        let lhs = self.sum()?;
        let expr = match self.peek()? {
            (Token::Cmp(op), op_span) => {
                self.bump();
                let rhs = self.sum()?;
                let span = lhs.span.to(rhs.span);
                let op = Spanned {
                    value: op,
                    span: op_span,
                };
                let kind = ExprKind::Compare {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                };
                self.node(kind, span)?
            }
            (Token::Name(name), _) if name == "in" => {
                self.bump();
                self.in_list(lhs)?
            }
            _ => return Ok(lhs),
        };
        if let (Token::Cmp(_), span) = self.peek()? {
            return Err(self.error(
                span,
                "comparisons cannot be chained — join them with \"and\"",
            ));
        }
        Ok(expr)
    }

    fn in_list(&mut self, lhs: Expr) -> Result<Expr, RuleError> {
        self.expect(Token::LBracket, "expected \"[\" after \"in\"")?;
        let mut list = Vec::new();
        loop {
            let (token, span) = self.next()?;
            let literal = match token {
                Token::String(s) => Literal::String(s),
                Token::Number(n) => Literal::Number(n),
                Token::Duration(ms) => Literal::Duration(ms),
                Token::Minus => self.negative_number(span)?,
                Token::Name(name) if name == "true" || name == "false" => {
                    Literal::Bool(name == "true")
                }
                other => {
                    return Err(self.error(
                        span,
                        format!(
                            "expected a value like \"mobile\" or 3 in the list, found {}",
                            describe(&other)
                        ),
                    ))
                }
            };
            list.push(self.node(ExprKind::Literal(literal), span)?);
            match self.next()? {
                (Token::Comma, _) => {}
                (Token::RBracket, end) => {
                    let span = lhs.span.to(end);
                    let kind = ExprKind::In {
                        lhs: Box::new(lhs),
                        list,
                    };
                    return self.node(kind, span);
                }
                (other, span) => {
                    return Err(self.error(
                        span,
                        format!(
                            "expected \",\" or \"]\" in the list, found {}",
                            describe(&other)
                        ),
                    ))
                }
            }
        }
    }

    fn negative_number(&mut self, minus: Span) -> Result<Literal, RuleError> {
        match self.next()? {
            (Token::Number(n), _) => Ok(Literal::Number(-n)),
            (other, span) => Err(self.error(
                span.to(minus),
                format!("expected a number after \"-\", found {}", describe(&other)),
            )),
        }
    }

    fn sum(&mut self) -> Result<Expr, RuleError> {
        let first = self.primary()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek()?.0 {
                Token::Plus => ArithOp::Add,
                Token::Minus => ArithOp::Sub,
                _ => break,
            };
            self.bump();
            rest.push((op, self.primary()?));
        }
        let Some((_, last)) = rest.last() else {
            return Ok(first);
        };
        let span = first.span.to(last.span);
        let kind = ExprKind::Sum {
            first: Box::new(first),
            rest,
        };
        self.node(kind, span)
    }

    fn primary(&mut self) -> Result<Expr, RuleError> {
        let (token, span) = self.next()?;
        let kind = match token {
            Token::String(s) => ExprKind::Literal(Literal::String(s)),
            Token::Number(n) => ExprKind::Literal(Literal::Number(n)),
            Token::Duration(ms) => ExprKind::Literal(Literal::Duration(ms)),
            Token::Minus if matches!(self.peek()?.0, Token::Number(_)) => {
                let literal = self.negative_number(span)?;
                return self.node(ExprKind::Literal(literal), span.to(self.last_span()));
            }
            Token::LParen => return self.parenthesized(span),
            Token::Name(name) => return self.named(name, span),
            Token::End => {
                return Err(self.error(
                    span,
                    "rule ends too early — expected a value or a condition",
                ))
            }
            other => {
                return Err(self.error(
                    span,
                    format!(
                        "expected a value or a condition, found {}",
                        describe(&other)
                    ),
                ))
            }
        };
        self.node(kind, span)
    }

    fn last_span(&self) -> Span {
        let end = self.lexer.offset();
        Span::new(end, end)
    }

    fn parenthesized(&mut self, open: Span) -> Result<Expr, RuleError> {
        self.nest(open)?;
        let mut inner = self.or()?;
        self.depth -= 1;
        let close = self.expect(Token::RParen, "expected \")\" to close the \"(\"")?;
        inner.span = open.to(close);
        Ok(inner)
    }

    fn named(&mut self, name: String, span: Span) -> Result<Expr, RuleError> {
        if matches!(self.peek()?.0, Token::LParen) {
            return self.call(name, span);
        }
        let kind = match name.as_str() {
            "true" => ExprKind::Literal(Literal::Bool(true)),
            "false" => ExprKind::Literal(Literal::Bool(false)),
            "now" => ExprKind::Now,
            "country" => ExprKind::Attribute(Attribute::Country),
            "region" => ExprKind::Attribute(Attribute::Region),
            "device_type" => ExprKind::Attribute(Attribute::DeviceType),
            _ => return self.trait_or_unknown(name, span),
        };
        self.node(kind, span)
    }

    fn trait_or_unknown(&mut self, name: String, span: Span) -> Result<Expr, RuleError> {
        if let Some(trait_name) = name.strip_prefix("traits.") {
            let valid = trait_name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
            if valid {
                let kind = ExprKind::Attribute(Attribute::Trait(trait_name.to_owned()));
                return self.node(kind, span);
            }
        }
        let message = if name == "traits" || name.starts_with("traits.") {
            "expected a trait name like traits.plan".to_owned()
        } else if KEYWORDS.contains(&name.as_str()) {
            format!("expected a value or a condition before \"{name}\"")
        } else if FUNCTIONS.contains(&name.as_str()) {
            format!("{name} needs parentheses, like {name}(page_viewed)")
        } else if let Some(close) = did_you_mean(&name, &VALUES) {
            format!("unknown name \"{name}\" — did you mean \"{close}\"?")
        } else {
            format!(
                "unknown name \"{name}\" — expected country, region, device_type, traits.NAME, now, a function or a literal"
            )
        };
        Err(self.error(span, message))
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Expr, RuleError> {
        if !FUNCTIONS.contains(&name.as_str()) {
            let message = match did_you_mean(&name, &FUNCTIONS) {
                Some(close) => format!("unknown function \"{name}\" — did you mean \"{close}\"?"),
                None => format!(
                    "unknown function \"{name}\" — the functions are count, last_seen and first_seen"
                ),
            };
            return Err(self.error(name_span, message));
        }
        self.bump();
        let kind = if name == "count" {
            let at = self.peek_in(NameMode::Activity)?.1;
            let activity = self.activity(&name)?.ok_or_else(|| {
                self.error(at, "count needs an activity, like count(page_viewed)")
            })?;
            let window = self.window()?;
            ExprKind::Count { activity, window }
        } else {
            let activity = self.activity(&name)?;
            if let (Token::Comma, span) = self.peek()? {
                return Err(self.error(span, format!("{name} takes at most one activity")));
            }
            if name == "last_seen" {
                ExprKind::LastSeen(activity)
            } else {
                ExprKind::FirstSeen(activity)
            }
        };
        let close = self.expect(Token::RParen, &format!("expected \")\" to close {name}("))?;
        self.node(kind, name_span.to(close))
    }

    fn activity(&mut self, function: &str) -> Result<Option<Spanned<String>>, RuleError> {
        let (token, span) = self.peek_in(NameMode::Activity)?;
        let name = match token {
            Token::Name(name) | Token::String(name) => name,
            Token::RParen => return Ok(None),
            other => {
                return Err(self.error(
                    span,
                    format!(
                        "expected an activity like page_viewed in {function}(), found {}",
                        describe(&other)
                    ),
                ))
            }
        };
        self.bump();
        let valid = (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
        if !valid {
            return Err(self.error(
                span,
                "an activity type is 1 to 64 characters of letters, digits, _ . : -",
            ));
        }
        Ok(Some(Spanned { value: name, span }))
    }

    fn window(&mut self) -> Result<Option<Spanned<i64>>, RuleError> {
        if self.peek()?.0 != Token::Comma {
            return Ok(None);
        }
        self.bump();
        match self.next()? {
            (Token::Duration(ms), span) => Ok(Some(Spanned { value: ms, span })),
            (Token::Number(_), span) => Err(self.error(
                span,
                "expected a duration like 30d after \",\" — add a unit: s, m, h, d or w",
            )),
            (_, span) => Err(self.error(span, "expected a duration like 30d after \",\"")),
        }
    }
}

#[cfg(test)]
mod tests;
