//! Property: any bead, with arbitrary unknown keys at any depth, survives
//! YAML → JSONL → YAML unchanged.

use std::path::Path;

use loom::bead::json::to_go_json;
use loom::bead::{Bead, Comment, Dependency, Timestamp, keys};
use loom::store::yaml;
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e15f64..1e15f64).prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Unknown keys: anything but the keys bd (and so Loom) gives a meaning.
fn unknown_map(max: usize) -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((any::<String>(), json_value()), 0..max).prop_map(|pairs| {
        pairs
            .into_iter()
            .filter(|(k, _)| keys::bead_key(k).is_none() && keys::known_rank(k).is_none())
            .collect()
    })
}

/// A typed field holding JSON: `null` there means absent, so it is never generated.
fn opt_json() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(json_value().prop_filter("null is absence", |v| !v.is_null()))
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(any::<String>())
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        (0i64..4_000_000_000, 0i32..1_000_000_000)
            .prop_map(|(s, ns)| { Timestamp::from_instant(jiff::Timestamp::new(s, ns).unwrap()) }),
        Just(Timestamp::parse("2025-12-14T14:25:28.448654-08:00")),
    ]
}

fn dependency() -> impl Strategy<Value = Dependency> {
    (
        "[a-z]{1,4}-[a-z0-9]{3,8}",
        prop_oneof![
            Just("blocks".to_owned()),
            Just("parent-child".to_owned()),
            "[a-z-]{1,12}"
        ],
        prop::option::of(timestamp()),
        opt_text(),
        opt_json(),
        prop::collection::vec(("x_[a-z]{1,6}", json_value()), 0..3),
    )
        .prop_map(|(to, t, at, by, meta, extra)| Dependency {
            issue_id: "p-self".into(),
            depends_on_id: to,
            dep_type: t,
            created_at: at,
            created_by: by,
            metadata: meta,
            thread_id: None,
            extra: extra.into_iter().collect(),
        })
}

fn comment() -> impl Strategy<Value = Comment> {
    (
        prop_oneof![
            any::<u32>().prop_map(Value::from),
            "[a-f0-9]{8}".prop_map(Value::from)
        ],
        any::<String>(),
        any::<String>(),
        prop::option::of(timestamp()),
    )
        .prop_map(|(id, author, text, at)| Comment {
            id,
            issue_id: "p-self".into(),
            author,
            text,
            created_at: at,
            extra: Map::new(),
        })
}

prop_compose! {
    fn bead()(
        title in any::<String>(),
        description in opt_text(),
        notes in opt_text(),
        status in prop_oneof![Just("open".to_owned()), Just("closed".to_owned()), "[a-z_]{1,10}"],
        priority in any::<i64>(),
        issue_type in prop_oneof![Just("task".to_owned()), "[a-z-]{1,10}"],
        assignee in opt_text(),
        created_at in prop::option::of(timestamp()),
        updated_at in prop::option::of(timestamp()),
        defer_until in prop::option::of(timestamp()),
        metadata in opt_json(),
        labels in prop::collection::vec(any::<String>(), 0..4),
        dependencies in prop::collection::vec(dependency(), 0..3),
        comments in prop::collection::vec(comment(), 0..2),
        ephemeral in prop::option::of(any::<bool>()),
        extra in unknown_map(5),
    ) -> Bead {
        Bead {
            id: "p-self".into(),
            title, description, notes, status, priority, issue_type, assignee,
            created_at, updated_at, defer_until, metadata, labels, dependencies, comments,
            ephemeral, extra,
            ..Bead::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn yaml_jsonl_yaml_is_lossless(bead in bead()) {
        let path = Path::new("p-self.yaml");
        let yaml1 = yaml::render(&bead).unwrap();
        let from_yaml = yaml::parse(yaml1.as_bytes(), path, path)
            .map_err(|p| TestCaseError::fail(format!("{p}\n{yaml1}")))?;
        prop_assert_eq!(&from_yaml, &bead);
        let line = to_go_json(&from_yaml).unwrap();
        prop_assert!(!line.contains('\n'));
        let from_jsonl: Bead = serde_json::from_str(&line).unwrap();
        prop_assert_eq!(&from_jsonl, &bead);
        let yaml2 = yaml::render(&from_jsonl).unwrap();
        prop_assert_eq!(yaml1, yaml2);
    }
}
