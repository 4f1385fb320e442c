//! Tests of the parser: the RULES.md examples, precedence, spans, errors and limits.

use super::*;

const EXAMPLES: [&str; 6] = [
    r#"region == "Area X" and count(product_purchased, 30d) == 0"#,
    r#"device_type == "mobile" and count(page_viewed) >= 10 and last_seen() < now - 7d"#,
    r#"country == "US" and count(added_to_cart, 7d) >= 1 and count(product_purchased, 7d) == 0"#,
    "count(product_purchased, 30d) >= 3",
    r#"device_type in ["desktop", "tablet"] and last_seen() >= now - 1d"#,
    r#"traits.plan == "pro" and not (first_seen() > now - 14d)"#,
];

fn parse_ok(src: &str) -> Expr {
    parse(src, &Limits::default()).unwrap_or_else(|e| panic!("{src}: {e}"))
}

fn parse_err(src: &str) -> (String, u32, u32) {
    let err = parse(src, &Limits::default()).expect_err(src);
    (err.message, err.line, err.column)
}

#[test]
fn every_example_of_rules_md_parses_and_prints_back() {
    for src in EXAMPLES {
        let ast = parse_ok(src);
        let printed = ast.to_string();
        let reparsed = parse_ok(&printed);
        assert_eq!(reparsed.without_spans(), ast.without_spans());
        assert_eq!(reparsed.to_string(), printed, "canonical form is stable");
    }
    assert_eq!(parse_ok(EXAMPLES[1]).to_string(), EXAMPLES[1]);
    assert_eq!(
        parse_ok(EXAMPLES[5]).to_string(),
        r#"traits.plan == "pro" and not first_seen() > now - 14d"#
    );
}

#[test]
fn precedence_is_or_then_and_then_not() {
    let ast = parse_ok("not traits.a == 1 or traits.b == 2 and traits.c == 3").without_spans();
    let ExprKind::Or(items) = ast.kind else {
        panic!("{ast:?}")
    };
    assert!(matches!(items[0].kind, ExprKind::Not(_)));
    assert!(matches!(items[1].kind, ExprKind::And(_)));
}

#[test]
fn parentheses_comments_and_newlines_are_free() {
    let src =
        "( count(a) >= 1 # first\n  or\n count(\"9b\", 2w) > 0 )\n and not last_seen(x-y) < now-1h";
    let ast = parse_ok(src);
    assert_eq!(
        ast.to_string(),
        "(count(a) >= 1 or count(\"9b\", 14d) > 0) and not last_seen(x-y) < now - 1h"
    );
}

#[test]
fn spans_point_into_the_source() {
    let src = "count(page_viewed) >= 10";
    let ast = parse_ok(src);
    let ExprKind::Compare { op, lhs, rhs } = &ast.kind else {
        panic!()
    };
    assert_eq!(&src[lhs.span.start..lhs.span.end], "count(page_viewed)");
    assert_eq!(&src[op.span.start..op.span.end], ">=");
    assert_eq!(&src[rhs.span.start..rhs.span.end], "10");
}

#[test]
fn negative_numbers_and_decimals() {
    let ast = parse_ok("traits.score > -2.5 and traits.n in [-1, 2]");
    assert_eq!(
        ast.to_string(),
        "traits.score > -2.5 and traits.n in [-1, 2]"
    );
}

#[test]
fn error_messages_say_what_to_do_and_where() {
    let cases: [(&str, &str, u32, u32); 16] = [
        ("cnt(page_viewed) > 1", "unknown function \"cnt\" — did you mean \"count\"?", 1, 1),
        ("count(page_viewed, ) > 1", "expected a duration like 30d after \",\"", 1, 20),
        ("count(page_viewed, 30) > 1", "expected a duration like 30d after \",\" — add a unit: s, m, h, d or w", 1, 20),
        ("regoin == \"x\"", "unknown name \"regoin\" — did you mean \"region\"?", 1, 1),
        ("", "rule is empty — write a condition like count(page_viewed) >= 1", 1, 1),
        ("count(a) >= 1 and", "rule ends too early — expected a value or a condition", 1, 18),
        ("count(a) >= 1\n  count(b) >= 1", "unexpected \"count\" after a complete condition — join conditions with \"and\" or \"or\"", 2, 3),
        ("(count(a) >= 1", "expected \")\" to close the \"(\", found the end of the rule", 1, 15),
        ("count(a) >= 1)", "unexpected \")\" — no \"(\" to close", 1, 14),
        ("1 < count(a) < 3", "comparisons cannot be chained — join them with \"and\"", 1, 14),
        ("count > 1", "count needs parentheses, like count(page_viewed)", 1, 1),
        ("count() > 1", "count needs an activity, like count(page_viewed)", 1, 7),
        ("last_seen(a, b) < now", "last_seen takes at most one activity", 1, 12),
        ("country in []", "expected a value like \"mobile\" or 3 in the list, found \"]\"", 1, 13),
        ("traits. == 1", "expected a trait name like traits.plan", 1, 1),
        ("and", "expected a value or a condition before \"and\"", 1, 1),
    ];
    for (src, message, line, column) in cases {
        assert_eq!(parse_err(src), (message.to_owned(), line, column), "{src}");
    }
}

#[test]
fn limits_are_enforced() {
    let long = format!("count(a) >= 1 {}", " ".repeat(5000));
    assert_eq!(
        parse_err(&long).0,
        "rule is too long: at most 4096 characters"
    );

    let many = vec!["count(a) >= 1"; 90].join(" or ");
    assert_eq!(parse_err(&many).0, "rule is too large: at most 256 parts");

    let deep = format!("{}count(a) >= 1{}", "(".repeat(33), ")".repeat(33));
    assert_eq!(
        parse_err(&deep),
        ("rule is nested too deeply: at most 32 levels".into(), 1, 33)
    );
    let fine = format!("{}count(a) >= 1{}", "(".repeat(32), ")".repeat(32));
    parse_ok(&fine);

    let nots = format!("{}count(a) >= 1", "not ".repeat(40));
    assert_eq!(
        parse_err(&nots).0,
        "rule is nested too deeply: at most 32 levels"
    );
}

#[test]
fn thirty_two_nots_print_back_within_the_depth_limit() {
    // Found by fuzzing: printing `not (not (…))` doubled the nesting.
    let src = format!("{}6 < 6", "not\n".repeat(32));
    let printed = parse_ok(&src).to_string();
    assert!(printed.starts_with("not not not"), "{printed}");
    assert_eq!(
        parse_ok(&printed).without_spans(),
        parse_ok(&src).without_spans()
    );
}

#[test]
fn canonical_text_may_outgrow_the_length_limit_but_nothing_else() {
    // Found by fuzzing: a compact 4,096-character rule prints with spaces.
    let src = format!("traits.x==\"{}\"", "a".repeat(4084));
    assert_eq!(src.chars().count(), 4096);
    let printed = parse_ok(&src).to_string();
    assert_eq!(printed.chars().count(), 4098);
    let relaxed = Limits {
        max_chars: usize::MAX,
        ..Limits::default()
    };
    let again = parse(&printed, &relaxed).unwrap();
    assert_eq!(again.without_spans(), parse_ok(&src).without_spans());
}

#[test]
fn deep_input_is_refused_without_exhausting_the_stack() {
    let deep = "(".repeat(4000);
    assert_eq!(
        parse_err(&deep).0,
        "rule is nested too deeply: at most 32 levels"
    );
}

#[test]
fn activities_must_be_valid_activity_types() {
    let (message, _, column) = parse_err("count(\"has space\") > 1");
    assert_eq!(
        message,
        "an activity type is 1 to 64 characters of letters, digits, _ . : -"
    );
    assert_eq!(column, 7);
    parse_ok("count(\"9lives\") > 1 and count(a.b:c-d) > 1");
}
