//! Holds the typed path to the Value validator's answers: a table of hand-picked bodies
//! and a property test over generated ones, valid and not, each decoded both ways.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::http::event_json::tests::rules;

fn types() -> Vec<String> {
    ["cookie", "email", "facebook"].map(String::from).to_vec()
}

/// What the reference path answers: the events, or the error and the body's size.
fn by_reference(body: &[u8], rules: &EventRules<'_>) -> Result<Vec<Incoming>, (String, u64)> {
    let value = parse_json(body).map_err(|e| (format!("{e:?}"), 0))?;
    let size = value.as_array().map_or(1, Vec::len) as u64;
    validate_body(value, rules).map_err(|e| (format!("{e:?}"), size))
}

/// Decodes `body` both ways (with and without texts) and asserts the answers match
/// the reference; returns whether the typed path took it by itself, both ways.
fn assert_same(body: &[u8]) -> bool {
    let types = types();
    let rules = rules(&types);
    let expected = by_reference(body, &rules);
    for texts in [false, true] {
        let got = decode_events(body, &rules, texts)
            .map_err(|refused| (format!("{:?}", refused.error), refused.events));
        let got_events = got.as_ref().map(|decoded| &decoded.events);
        assert_eq!(
            got_events.map_err(Clone::clone),
            expected.as_ref().map_err(Clone::clone),
            "texts: {texts}, body: {}",
            String::from_utf8_lossy(body)
        );
        if let Ok(decoded) = got {
            assert_texts_are_the_items(body, &decoded, texts);
        }
    }
    typed_body(body, &rules).is_ok() && typed_with_texts(body, &rules).is_ok()
}

/// Each kept text reads as the body's item at its position.
fn assert_texts_are_the_items(body: &[u8], decoded: &Decoded<'_>, texts: bool) {
    if !texts {
        assert!(decoded.texts.is_empty());
        return;
    }
    let items = match parse_json(body).unwrap() {
        Value::Array(items) => items,
        other => vec![other],
    };
    let kept: Vec<Value> = decoded
        .texts
        .iter()
        .map(|text| serde_json::from_str(text.get()).unwrap())
        .collect();
    assert_eq!(kept, items);
}

const VALID: &str = r#"{"id":"c1","id_type":"cookie","created_at":"2026-10-31T00:00:00",
    "payload":{"activity_type":"page_viewed","order_total":"","url":"http://x"}}"#;

/// `VALID` with its closing brace replaced by `, extra}`.
fn with(extra: &str) -> String {
    let open = VALID.strip_suffix('}').unwrap();
    format!("{open}, {extra}}}")
}

#[test]
fn valid_bodies_take_the_typed_path_and_match() {
    let full = r#"{"id":"c\u00e9\"1","id_type":"email","region":"Cal","device_type":"mobile",
        "country":"US","created_at":"2026-10-31T02:00:00.1239+02:00","event_id":"e1",
        "identities":{"cookie":"c2","facebook":"f\n1"},
        "traits":{"plan":"pro","n":3,"neg":-4,"f":1.5,"big":18446744073709551616,"e":1E2,
                  "yes":true,"no":false,"esc\u00e9":"\u2603","z":-0},
        "payload":{"activity_type":"a.b:c-d_9","order_total":"-12.50",
                   "deep":[{"x":[1,2,{"y":null}]}],"n":1e300},
        "unknown":{"a":[true,false,null,"s",-1.25e-3]}}"#;
    let bodies = [
        VALID.to_owned(),
        full.to_owned(),
        format!("[{VALID}]"),
        format!(" \n[ {VALID} ,\t{full} ]\r\n"),
        "[]".to_owned(),
        with(r#""event_id":null,"identities":null,"traits":null"#),
        with(r#""created_at":null"#).replace(r#""created_at":"2026-10-31T00:00:00","#, ""),
        with(r#""country":null,"region":null,"device_type":null"#),
        with(r#""traits":{},"identities":{}"#),
        with(&format!(r#""region":"{}""#, "é".repeat(128))),
        with(&format!(r#""id":"{}""#, "é".repeat(256))).replace(r#""id":"c1","#, ""),
        with(&format!(
            r#""traits":{{"{}":"{}"}}"#,
            "t".repeat(128),
            "é".repeat(1024)
        )),
        with(r#""created_at":"2026-11-01T00:05:00Z""#)
            .replace(r#""created_at":"2026-10-31T00:00:00","#, ""),
    ];
    for body in bodies {
        assert!(assert_same(body.as_bytes()), "declined: {body}");
    }
}

#[test]
fn refused_and_unusual_bodies_match() {
    let deep = |levels: usize| {
        with(&format!(
            r#""payload":{{"activity_type":"a","x":{}1{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        ))
        .replace(
            r#""payload":{"activity_type":"page_viewed","order_total":"","url":"http://x"},"#,
            "",
        )
    };
    let mut bodies = vec![
        String::new(),
        "   ".to_owned(),
        "nul".to_owned(),
        "5".to_owned(),
        r#""text""#.to_owned(),
        "null".to_owned(),
        "[5]".to_owned(),
        "[[]]".to_owned(),
        format!("[{VALID},]"),
        format!("{VALID} x"),
        format!("[{VALID}] ]"),
        format!("[{VALID},{VALID},{VALID},{VALID}]"),
        format!("[{VALID},{VALID},{VALID},{VALID}"),
        format!("[{VALID},{VALID},{VALID}, 5]"),
        VALID[..VALID.len() - 3].to_owned(),
        with(r#""id":"c2""#),
        with(r#""id":null"#),
        with(r#""id_type":null,"id_type":"email""#),
        with(r#""payload":null"#),
        with(r#""payload":{"activity_type":"x"}"#),
        with(r#""payload":{"activity_type":"x","activity_type":null}"#),
        with(r#""payload":{"activity_type":"x","order_total":"1,5"}"#),
        with(r#""payload":{"activity_type":"x","order_total":"1","order_total":""}"#),
        with(r#""payload":{"activity_type":"x","order_total":5}"#),
        with(r#""payload":{"activity_type":"bad type"}"#),
        with(r#""payload":[]"#),
        with(r#""created_at":"2026-11-01T00:05:00.001Z""#),
        with(r#""created_at":"yesterday""#),
        with(r#""created_at":5"#),
        with(r#""event_id":"""#),
        with(r#""event_id":7"#),
        with(r#""identities":{"passport":"p"}"#),
        with(r#""identities":{"email":""}"#),
        with(r#""identities":{"email":null}"#),
        with(r#""identities":{"email":"a","cookie":"b","email":"c"}"#),
        with(r#""identities":["email"]"#),
        with(r#""traits":{"plan":null}"#),
        with(r#""traits":{"plan":[1]}"#),
        with(r#""traits":{"":1}"#),
        with(r#""traits":{"a":1,"b":2,"a":"x"}"#),
        with(r#""traits":{"a":1e400}"#),
        with(r#""traits":5"#),
        with(r#""country":3"#),
        with(r#""region":true"#),
        with(r#""device_type":{}"#),
        with(r#""x":1e400"#),
        with(r#""x":-1e400"#),
        with(r#""x":"\ud800""#),
        with(r#""x":"\ud800\udc00""#),
        with(r#""x":"\q""#),
        with(r#""x":01"#),
        with(r#""i\u0064":"c9""#),
        with(&format!(r#""region":"{}""#, "é".repeat(129))),
        with(&format!(r#""created_at":"{}""#, "1".repeat(65))),
        with(&format!(r#""event_id":"{}""#, "e".repeat(257))),
        with(&format!(
            r#""identities":{{"email":"{}"}}"#,
            "é".repeat(257)
        )),
        with(&format!(r#""traits":{{"{}":1}}"#, "t".repeat(129))),
        with(&format!(r#""traits":{{"{}":1}}"#, "é".repeat(65))),
        with(&format!(r#""traits":{{"a":"{}"}}"#, "é".repeat(1025))),
        with(&format!(
            r#""payload":{{"activity_type":"{}"}}"#,
            "a".repeat(65)
        )),
        with(&format!(
            r#""traits":{{{}}}"#,
            (0..40)
                .map(|i| format!(r#""t{}":{i}"#, i % 39))
                .collect::<Vec<_>>()
                .join(",")
        )),
        with(&format!(
            r#""traits":{{{}}}"#,
            (0..40)
                .map(|i| format!(r#""t{i}":{i}"#))
                .collect::<Vec<_>>()
                .join(",")
        )),
    ];
    for levels in [60, 62, 63, 64, 65, 100, 124, 125, 126, 127, 128, 200] {
        bodies.push(deep(levels));
        bodies.push(format!("[{}]", deep(levels)));
    }
    for body in &bodies {
        assert_same(body.as_bytes());
    }
    for bytes in [&b"\xff"[..], b"{\"id\":\"\xc3\"}", b"[{\"x\":\"\xe9\"}]"] {
        assert_same(bytes);
    }
}

/// A JSON value to render, objects as pairs so that keys may repeat.
#[derive(Clone, Debug)]
enum Node {
    Raw(String),
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
}

impl Node {
    fn render(&self, out: &mut String) {
        match self {
            Node::Raw(text) => out.push_str(text),
            Node::Object(pairs) => {
                out.push('{');
                for (i, (key, value)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&format!("{key:?}:"));
                    value.render(out);
                }
                out.push('}');
            }
            Node::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.render(out);
                }
                out.push(']');
            }
        }
    }
}

fn keys() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "id",
        "id_type",
        "created_at",
        "payload",
        "event_id",
        "identities",
        "country",
        "region",
        "device_type",
        "traits",
        "activity_type",
        "order_total",
        "cookie",
        "email",
        "passport",
        "plan",
        "",
        "other",
    ])
    .prop_map(String::from)
}

fn scalars() -> impl Strategy<Value = Node> {
    let raw = prop::sample::select(vec![
        "null",
        "true",
        "false",
        "0",
        "-0",
        "7",
        "-3",
        "1.5",
        "1E2",
        "1e400",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775809",
        "\"\"",
        "\"c1\"",
        "\"cookie\"",
        "\"email\"",
        "\"page_viewed\"",
        "\"bad type\"",
        "\"2026-10-31T00:00:00\"",
        "\"2026-11-01T00:06:00Z\"",
        "\"12.5\"",
        "\"12,5\"",
        "\"-1\"",
        "\"\\u00e9t\\u00e9\"",
        "\"\\ud800\"",
        "\"tab\\there\"",
    ]);
    let long = (0usize..4, prop::sample::select(vec!["a", "é"])).prop_map(|(size, c)| {
        let n = [64, 128, 256, 1024][size];
        c.repeat(n + usize::from(c == "a"))
    });
    prop_oneof![
        8 => raw.prop_map(|text| Node::Raw(text.to_owned())),
        1 => long.prop_map(|text| Node::Raw(format!("{text:?}"))),
    ]
}

fn values() -> impl Strategy<Value = Node> {
    scalars().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec((keys(), inner.clone()), 0..4).prop_map(Node::Object),
            prop::collection::vec(inner, 0..3).prop_map(Node::Array),
        ]
    })
}

/// A valid event, then a few random changes: set a key (maybe again), drop one, or set
/// one inside `payload`.
fn events() -> impl Strategy<Value = Node> {
    let base = || {
        let text = |s: &str| Node::Raw(format!("{s:?}"));
        vec![
            ("id".to_owned(), text("c1")),
            ("id_type".to_owned(), text("cookie")),
            (
                "payload".to_owned(),
                Node::Object(vec![
                    ("activity_type".to_owned(), text("page_viewed")),
                    ("order_total".to_owned(), text("")),
                ]),
            ),
            (
                "traits".to_owned(),
                Node::Object(vec![("plan".to_owned(), text("pro"))]),
            ),
        ]
    };
    let change = (0u8..4, keys(), values(), any::<prop::sample::Index>());
    prop::collection::vec(change, 0..4).prop_map(move |changes| {
        let mut pairs = base();
        for (kind, key, value, at) in changes {
            match kind {
                0 => pairs.push((key, value)),
                1 => {
                    let i = at.index(pairs.len().max(1));
                    if i < pairs.len() {
                        pairs[i].1 = value;
                    }
                }
                2 if !pairs.is_empty() => {
                    pairs.remove(at.index(pairs.len()));
                }
                _ => {
                    if let Some((_, Node::Object(payload))) =
                        pairs.iter_mut().find(|(k, _)| k == "payload")
                    {
                        payload.push((key, value));
                    }
                }
            }
        }
        Node::Object(pairs)
    })
}

fn bodies() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        events(),
        prop::collection::vec(events(), 0..5).prop_map(Node::Array),
        values(),
    ];
    (body, 0u8..8, any::<prop::sample::Index>()).prop_map(|(body, damage, at)| {
        let mut text = String::new();
        body.render(&mut text);
        match damage {
            // Cut at a char boundary, or add trailing text.
            0 => {
                let mut cut = at.index(text.len() + 1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            1 => text.push_str(" ,"),
            _ => {}
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn typed_path_answers_as_the_value_validator(body in bodies()) {
        assert_same(body.as_bytes());
    }
}
