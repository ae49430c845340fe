//! The bead record: bd's `Issue` with typed fields where Loom needs them and every other key
//! kept, in order, at any depth.
//!
//! Deserialization is hand-written (not `#[serde(flatten)]`) for two reasons: it is the hot path
//! of every command (100k records in well under a second), and it must keep any key it does not
//! know. Serialization writes keys in bd's struct order (see [`super::keys`]) so a changed record
//! looks like one bd wrote; unknown keys follow the known ones in their original order.

use std::fmt;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::keys::{self, BeadKey};
use super::time::Timestamp;

/// One work item, as bd's `Issue`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Bead {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub design: Option<String>,
    pub acceptance_criteria: Option<String>,
    pub notes: Option<String>,
    /// Open set; built-ins in [`super::status`]. Missing on disk reads as `open` (bd's default).
    pub status: String,
    /// 0 (critical) to 4; always written. Out-of-range values load (with a warning).
    pub priority: i64,
    /// Open set; built-ins in [`super::issue_type`]. Missing reads as `task`.
    pub issue_type: String,
    pub assignee: Option<String>,
    pub owner: Option<String>,
    pub created_at: Option<Timestamp>,
    pub created_by: Option<String>,
    pub updated_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    pub close_reason: Option<String>,
    pub due_at: Option<Timestamp>,
    pub defer_until: Option<Timestamp>,
    pub external_ref: Option<String>,
    /// Arbitrary JSON; Loom's own data lives under `metadata.loom`.
    pub metadata: Option<Value>,
    pub labels: Vec<String>,
    /// Outgoing edges: `issue_id` is this bead.
    pub dependencies: Vec<Dependency>,
    pub comments: Vec<Comment>,
    pub ephemeral: Option<bool>,
    pub pinned: Option<bool>,
    /// Every other key, in the order it was read.
    pub extra: Map<String, Value>,
}

/// An edge `issue_id → depends_on_id` of some type (`blocks`: `issue_id` waits).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Dependency {
    pub issue_id: String,
    pub depends_on_id: String,
    /// Open set; built-ins in [`super::dep_type`].
    pub dep_type: String,
    pub created_at: Option<Timestamp>,
    pub created_by: Option<String>,
    /// bd stores a string holding JSON here; any JSON value is kept as found.
    pub metadata: Option<Value>,
    pub thread_id: Option<String>,
    pub extra: Map<String, Value>,
}

/// A comment on a bead.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Comment {
    /// An integer in older bd, a string (UUID) in newer; kept as found.
    pub id: Value,
    pub issue_id: String,
    pub author: String,
    pub text: String,
    pub created_at: Option<Timestamp>,
    pub extra: Map<String, Value>,
}

impl Bead {
    /// A new comment by `author` (the next integer id when the bead's comments use integers,
    /// else a short hash).
    pub fn new_comment(&self, author: &str, text: &str, now: &super::Timestamp) -> Comment {
        let numeric = self.comments.iter().all(|c| c.id.is_u64());
        let id = if numeric {
            Value::from(
                self.comments
                    .iter()
                    .filter_map(|c| c.id.as_u64())
                    .max()
                    .unwrap_or(0)
                    + 1,
            )
        } else {
            let seed = super::id::IdSeed {
                prefix: "",
                title: text,
                description: &self.id,
                creator: author,
                created_at_nanos: now.sort_key(),
            };
            Value::from(super::id::hash_suffix(&seed, 0, 8))
        };
        Comment {
            id,
            issue_id: self.id.clone(),
            author: author.to_owned(),
            text: text.to_owned(),
            created_at: Some(now.clone()),
            extra: Map::new(),
        }
    }

    /// `metadata.loom`, Loom's own per-bead data, if present.
    pub fn loom_metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata.as_ref()?.get("loom")?.as_object()
    }

    /// A value of `metadata.loom`.
    pub fn loom_get(&self, key: &str) -> Option<&Value> {
        self.loom_metadata()?.get(key)
    }

    /// `metadata.loom`, created if missing. A `metadata` that is not an object is kept under
    /// `metadata.previous`; a `loom` value that is not an object is replaced.
    pub fn loom_mut(&mut self) -> &mut Map<String, Value> {
        let meta = self
            .metadata
            .get_or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            let previous = std::mem::take(meta);
            let mut m = Map::new();
            m.insert("previous".into(), previous);
            *meta = Value::Object(m);
        }
        let Value::Object(obj) = meta else {
            unreachable!("metadata was made an object above")
        };
        let loom = obj
            .entry("loom")
            .or_insert_with(|| Value::Object(Map::new()));
        if !loom.is_object() {
            *loom = Value::Object(Map::new());
        }
        match loom {
            Value::Object(m) => m,
            _ => unreachable!("metadata.loom was made an object above"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deserialization

fn field<'de, A, T>(map: &mut A, key: &str) -> Result<T, A::Error>
where
    A: MapAccess<'de>,
    T: DeserializeOwned,
{
    map.next_value::<T>()
        .map_err(|e| de::Error::custom(format_args!("field `{key}`: {e}")))
}

/// `null` reads as absent.
fn opt_field<'de, A, T>(map: &mut A, key: &str) -> Result<Option<T>, A::Error>
where
    A: MapAccess<'de>,
    T: DeserializeOwned,
{
    field::<A, Option<T>>(map, key)
}

fn vec_field<'de, A, T>(map: &mut A, key: &str) -> Result<Vec<T>, A::Error>
where
    A: MapAccess<'de>,
    T: DeserializeOwned,
{
    Ok(opt_field::<A, Exact<T>>(map, key)?
        .map(|e| e.0)
        .unwrap_or_default())
}

/// A list read into a vector of exactly its length. serde's own grows a vector to room for
/// four at least: with 100,000 beads, the unused room of their dependency lists alone is
/// tens of megabytes, and shrinking afterwards costs a copy per bead.
struct Exact<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Exact<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Seq<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Seq<T> {
            type Value = Exact<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list")
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Exact<T>, S::Error> {
                // Up to four on the stack, then one allocation of the right size.
                const HEAD: usize = 4;
                let mut head: [Option<T>; HEAD] = [None, None, None, None];
                for n in 0..HEAD {
                    match seq.next_element::<T>()? {
                        Some(x) => head[n] = Some(x),
                        None => {
                            let mut v = Vec::with_capacity(n);
                            v.extend(head.into_iter().flatten());
                            return Ok(Exact(v));
                        }
                    }
                }
                let mut v = Vec::with_capacity(HEAD * 2);
                v.extend(head.into_iter().flatten());
                while let Some(x) = seq.next_element::<T>()? {
                    v.push(x);
                }
                v.shrink_to_fit();
                Ok(Exact(v))
            }
        }
        deserializer.deserialize_seq(Seq(std::marker::PhantomData))
    }
}

/// A map key, borrowed from the input when it has no escapes (no allocation per key).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Reads a bead; with `light`, skips what no listing or graph needs (long texts, comments,
/// metadata, unknown keys) without allocating for it.
struct BeadVisitor {
    light: bool,
}

/// Skips a value in light mode, else reads it.
fn heavy<'de, A, T>(map: &mut A, key: &str, light: bool) -> Result<Option<T>, A::Error>
where
    A: MapAccess<'de>,
    T: DeserializeOwned,
{
    if light {
        map.next_value::<de::IgnoredAny>()?;
        Ok(None)
    } else {
        opt_field(map, key)
    }
}

impl<'de> Visitor<'de> for BeadVisitor {
    type Value = Bead;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bead object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Bead, A::Error> {
        let light = self.light;
        let mut b = Bead::default();
        let mut status = None;
        let mut issue_type = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let key: &str = &key;
            match keys::bead_key(key) {
                Some(BeadKey::Id) => b.id = field(&mut map, key)?,
                Some(BeadKey::Title) => b.title = opt_field(&mut map, key)?.unwrap_or_default(),
                Some(BeadKey::Description) => b.description = heavy(&mut map, key, light)?,
                Some(BeadKey::Design) => b.design = heavy(&mut map, key, light)?,
                Some(BeadKey::AcceptanceCriteria) => {
                    b.acceptance_criteria = heavy(&mut map, key, light)?;
                }
                Some(BeadKey::Notes) => b.notes = heavy(&mut map, key, light)?,
                Some(BeadKey::Status) => status = opt_field::<A, String>(&mut map, key)?,
                Some(BeadKey::Priority) => {
                    b.priority = opt_field(&mut map, key)?.unwrap_or_default()
                }
                Some(BeadKey::IssueType) => issue_type = opt_field::<A, String>(&mut map, key)?,
                Some(BeadKey::Assignee) => b.assignee = opt_field(&mut map, key)?,
                Some(BeadKey::Owner) => b.owner = opt_field(&mut map, key)?,
                Some(BeadKey::CreatedAt) => b.created_at = opt_field(&mut map, key)?,
                Some(BeadKey::CreatedBy) => b.created_by = opt_field(&mut map, key)?,
                Some(BeadKey::UpdatedAt) => b.updated_at = opt_field(&mut map, key)?,
                Some(BeadKey::ClosedAt) => b.closed_at = opt_field(&mut map, key)?,
                Some(BeadKey::CloseReason) => b.close_reason = opt_field(&mut map, key)?,
                Some(BeadKey::DueAt) => b.due_at = opt_field(&mut map, key)?,
                Some(BeadKey::DeferUntil) => b.defer_until = opt_field(&mut map, key)?,
                Some(BeadKey::ExternalRef) => b.external_ref = opt_field(&mut map, key)?,
                // Kept in light mode too: small, and where Loom records a bead's state
                // (`metadata.loom.stage`), which boards and listings show.
                Some(BeadKey::Metadata) => b.metadata = opt_field(&mut map, key)?,
                Some(BeadKey::Labels) => b.labels = vec_field(&mut map, key)?,
                Some(BeadKey::Dependencies) if light => {
                    let deps: Vec<IndexDependency> = vec_field(&mut map, key)?;
                    b.dependencies = deps.into_iter().map(|d| d.0).collect();
                }
                Some(BeadKey::Dependencies) => b.dependencies = vec_field(&mut map, key)?,
                Some(BeadKey::Comments) => {
                    b.comments =
                        heavy::<A, Vec<Comment>>(&mut map, key, light)?.unwrap_or_default();
                }
                Some(BeadKey::Ephemeral) => b.ephemeral = opt_field(&mut map, key)?,
                Some(BeadKey::Pinned) => b.pinned = opt_field(&mut map, key)?,
                // `_type` tells bd's other records (memories) from issues: kept even here.
                None if light && key != "_type" => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                None => {
                    let value: Value = field(&mut map, key)?;
                    b.extra.insert(key.to_owned(), value);
                }
            }
        }
        b.status = status
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| super::status::OPEN.to_owned());
        b.issue_type = issue_type
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| super::issue_type::TASK.to_owned());
        Ok(b)
    }
}

impl<'de> Deserialize<'de> for Bead {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BeadVisitor { light: false })
    }
}

/// A bead read for indexing only: the fields listings, boards and the dependency graph use
/// (metadata included), without long texts, comments or unknown keys. Never write it back.
#[derive(Debug)]
pub struct IndexBead(pub Bead);

impl<'de> Deserialize<'de> for IndexBead {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(BeadVisitor { light: true })
            .map(IndexBead)
    }
}

/// Reads a dependency; with `light`, only what the graph uses (target, type, metadata).
struct DepVisitor {
    light: bool,
}

impl<'de> Visitor<'de> for DepVisitor {
    type Value = Dependency;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a dependency object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Dependency, A::Error> {
        let light = self.light;
        let mut d = Dependency::default();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let key: &str = &key;
            match key {
                "issue_id" => d.issue_id = opt_field(&mut map, key)?.unwrap_or_default(),
                "depends_on_id" => d.depends_on_id = field(&mut map, key)?,
                "type" => d.dep_type = opt_field(&mut map, key)?.unwrap_or_default(),
                "metadata" => d.metadata = opt_field(&mut map, key)?,
                "created_at" => d.created_at = heavy(&mut map, key, light)?,
                "created_by" => d.created_by = heavy(&mut map, key, light)?,
                "thread_id" => d.thread_id = heavy(&mut map, key, light)?,
                _ if light => {
                    map.next_value::<de::IgnoredAny>()?;
                }
                _ => {
                    let value: Value = field(&mut map, key)?;
                    d.extra.insert(key.to_owned(), value);
                }
            }
        }
        if d.dep_type.is_empty() {
            d.dep_type = super::dep_type::BLOCKS.to_owned();
        }
        Ok(d)
    }
}

impl<'de> Deserialize<'de> for Dependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(DepVisitor { light: false })
    }
}

/// A dependency read for indexing only.
struct IndexDependency(Dependency);

impl<'de> Deserialize<'de> for IndexDependency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(DepVisitor { light: true })
            .map(IndexDependency)
    }
}

impl<'de> Deserialize<'de> for Comment {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommentVisitor;
        impl<'de> Visitor<'de> for CommentVisitor {
            type Value = Comment;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a comment object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Comment, A::Error> {
                let mut c = Comment::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "id" => c.id = field(&mut map, &key)?,
                        "issue_id" => c.issue_id = opt_field(&mut map, &key)?.unwrap_or_default(),
                        "author" => c.author = opt_field(&mut map, &key)?.unwrap_or_default(),
                        "text" => c.text = opt_field(&mut map, &key)?.unwrap_or_default(),
                        "created_at" => c.created_at = opt_field(&mut map, &key)?,
                        _ => {
                            let value: Value = field(&mut map, &key)?;
                            c.extra.insert(key, value);
                        }
                    }
                }
                Ok(c)
            }
        }
        deserializer.deserialize_map(CommentVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Serialization

/// A typed field ready to be written; borrowed from the bead.
enum Out<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Time(&'a Timestamp),
    Json(&'a Value),
    Strings(&'a [String]),
    Deps(&'a [Dependency]),
    Comments(&'a [Comment]),
}

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Str(v) => s.serialize_str(v),
            Out::Int(v) => s.serialize_i64(*v),
            Out::Bool(v) => s.serialize_bool(*v),
            Out::Time(v) => v.serialize(s),
            Out::Json(v) => v.serialize(s),
            Out::Strings(v) => v.serialize(s),
            Out::Deps(v) => v.serialize(s),
            Out::Comments(v) => v.serialize(s),
        }
    }
}

impl Bead {
    /// The typed fields that are set, each with its bd key.
    fn typed_fields(&self) -> Vec<(BeadKey, Out<'_>)> {
        let mut out = Vec::with_capacity(20);
        fn s(k: BeadKey, v: &Option<String>) -> Option<(BeadKey, Out<'_>)> {
            v.as_deref().map(|v| (k, Out::Str(v)))
        }
        let strings = [
            s(BeadKey::Description, &self.description),
            s(BeadKey::Design, &self.design),
            s(BeadKey::AcceptanceCriteria, &self.acceptance_criteria),
            s(BeadKey::Notes, &self.notes),
            s(BeadKey::Assignee, &self.assignee),
            s(BeadKey::Owner, &self.owner),
            s(BeadKey::CreatedBy, &self.created_by),
            s(BeadKey::CloseReason, &self.close_reason),
            s(BeadKey::ExternalRef, &self.external_ref),
        ];
        out.push((BeadKey::Id, Out::Str(&self.id)));
        out.push((BeadKey::Title, Out::Str(&self.title)));
        out.push((BeadKey::Status, Out::Str(&self.status)));
        out.push((BeadKey::Priority, Out::Int(self.priority)));
        out.push((BeadKey::IssueType, Out::Str(&self.issue_type)));
        out.extend(strings.into_iter().flatten());
        let times = [
            (BeadKey::CreatedAt, &self.created_at),
            (BeadKey::UpdatedAt, &self.updated_at),
            (BeadKey::ClosedAt, &self.closed_at),
            (BeadKey::DueAt, &self.due_at),
            (BeadKey::DeferUntil, &self.defer_until),
        ];
        out.extend(
            times
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|t| (k, Out::Time(t)))),
        );
        if let Some(m) = &self.metadata {
            out.push((BeadKey::Metadata, Out::Json(m)));
        }
        if !self.labels.is_empty() {
            out.push((BeadKey::Labels, Out::Strings(&self.labels)));
        }
        if !self.dependencies.is_empty() {
            out.push((BeadKey::Dependencies, Out::Deps(&self.dependencies)));
        }
        if !self.comments.is_empty() {
            out.push((BeadKey::Comments, Out::Comments(&self.comments)));
        }
        if let Some(v) = self.ephemeral {
            out.push((BeadKey::Ephemeral, Out::Bool(v)));
        }
        if let Some(v) = self.pinned {
            out.push((BeadKey::Pinned, Out::Bool(v)));
        }
        out
    }
}

impl Serialize for Bead {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Merge typed fields and unknown keys by their rank in bd's key order; keys bd does not
        // know keep their relative order after all known ones.
        let mut entries: Vec<(usize, &str, Out<'_>)> = self
            .typed_fields()
            .into_iter()
            .map(|(k, v)| (keys::rank_of(k), k.name(), v))
            .collect();
        for (i, (key, value)) in self.extra.iter().enumerate() {
            let rank = keys::known_rank(key).unwrap_or(keys::UNKNOWN_RANK + i);
            entries.push((rank, key.as_str(), Out::Json(value)));
        }
        entries.sort_by_key(|(rank, _, _)| *rank);
        let mut map = serializer.serialize_map(Some(entries.len()))?;
        for (_, key, value) in &entries {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl Serialize for Dependency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("issue_id", &self.issue_id)?;
        map.serialize_entry("depends_on_id", &self.depends_on_id)?;
        map.serialize_entry("type", &self.dep_type)?;
        if let Some(v) = &self.created_at {
            map.serialize_entry("created_at", v)?;
        }
        if let Some(v) = &self.created_by {
            map.serialize_entry("created_by", v)?;
        }
        if let Some(v) = &self.metadata {
            map.serialize_entry("metadata", v)?;
        }
        if let Some(v) = &self.thread_id {
            map.serialize_entry("thread_id", v)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl Serialize for Comment {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("issue_id", &self.issue_id)?;
        map.serialize_entry("author", &self.author)?;
        map.serialize_entry("text", &self.text)?;
        if let Some(v) = &self.created_at {
            map.serialize_entry("created_at", v)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}
