//! The agent's tools, defined once: names, descriptions and JSON schemas (sent as native tool
//! definitions and described in the text protocol), argument parsing into [`Action`]s, and the
//! lenient JSON-in-text fallback for models without native tool calling.

use serde_json::{Value, json};

use crate::llm;

/// One tool as the model sees it.
#[derive(Debug)]
pub struct ToolSpec {
    pub name: &'static str,
    pub description: &'static str,
    schema: fn() -> Value,
    /// Changes files or runs programs (pair mode asks before these).
    pub mutates: bool,
    /// Ends the agent's loop.
    pub terminal: bool,
}

impl ToolSpec {
    pub fn parameters(&self) -> Value {
        (self.schema)()
    }
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

/// Every tool, in the order they are offered.
pub const TOOLS: &[ToolSpec] = &[
    ToolSpec {
        name: "read_file",
        description: "Read a text file of the worktree, optionally only lines start_line..end_line (1-based, inclusive).",
        schema: || {
            object(
                json!({
            "path": {"type": "string", "description": "Path relative to the repository root"},
            "start_line": {"type": "integer", "minimum": 1},
            "end_line": {"type": "integer", "minimum": 1}}),
                &["path"],
            )
        },
        mutates: false,
        terminal: false,
    },
    ToolSpec {
        name: "list_files",
        description: "List files under a directory (the root by default), respecting .gitignore.",
        schema: || object(json!({"path": {"type": "string"}}), &[]),
        mutates: false,
        terminal: false,
    },
    ToolSpec {
        name: "search_text",
        description: "Search files for a regular expression (respecting .gitignore); returns path:line: text for each match, bounded.",
        schema: || {
            object(
                json!({
            "pattern": {"type": "string", "description": "A regular expression (Rust regex syntax)"},
            "path": {"type": "string", "description": "Limit the search to this file or directory"}}),
                &["pattern"],
            )
        },
        mutates: false,
        terminal: false,
    },
    ToolSpec {
        name: "edit_file",
        description: "Replace the exact text `old` with `new` in a file. `old` must occur exactly once; copy it from read_file output, with enough lines to be unique.",
        schema: || {
            object(
                json!({"path": {"type": "string"}, "old": {"type": "string"}, "new": {"type": "string"}}),
                &["path", "old", "new"],
            )
        },
        mutates: true,
        terminal: false,
    },
    ToolSpec {
        name: "write_file",
        description: "Create or overwrite a file with `content` (parent directories are created).",
        schema: || {
            object(
                json!({"path": {"type": "string"}, "content": {"type": "string"}}),
                &["path", "content"],
            )
        },
        mutates: true,
        terminal: false,
    },
    ToolSpec {
        name: "run_command",
        description: "Run a shell command (sh -c) in the repository root; returns its exit code, stdout and stderr.",
        schema: || {
            object(
                json!({
            "command": {"type": "string"},
            "timeout_s": {"type": "integer", "minimum": 1, "description": "Kill it after this many seconds (default 120)"}}),
                &["command"],
            )
        },
        mutates: true,
        terminal: false,
    },
    ToolSpec {
        name: "git_diff",
        description: "Show the changes made so far in this worktree (including new files).",
        schema: || object(json!({}), &[]),
        mutates: false,
        terminal: false,
    },
    ToolSpec {
        name: "create_bead",
        description: "File a new bead: for an epic, one of its child beads (linked parent-child, id <epic>.N, filed in the order they should be done); otherwise work discovered along the way that is not part of this bead (linked discovered-from). `depends_on` lists ids (e.g. of children filed before) that must be done first.",
        schema: || {
            object(
                json!({
            "title": {"type": "string"},
            "description": {"type": "string"},
            "type": {"type": "string", "enum": ["bug", "feature", "task", "chore"]},
            "priority": {"type": "integer", "minimum": 0, "maximum": 4},
            "depends_on": {"type": "array", "items": {"type": "string"}}}),
                &["title"],
            )
        },
        mutates: false,
        terminal: false,
    },
    ToolSpec {
        name: "comment",
        description: "Add a comment to this bead (progress, findings, a note for the people who read it).",
        schema: || object(json!({"text": {"type": "string"}}), &["text"]),
        mutates: false,
        terminal: false,
    },
    ToolSpec {
        name: "done",
        description: "Finish: the bead's work is complete. Summarise what changed and how it was verified.",
        schema: || object(json!({"summary": {"type": "string"}}), &["summary"]),
        mutates: false,
        terminal: true,
    },
    ToolSpec {
        name: "escalate",
        description: "Stop and ask a person: the bead needs a decision you cannot make. Creates a decision bead.",
        schema: || {
            object(
                json!({
            "question": {"type": "string"},
            "options": {"type": "array", "items": {"type": "string"}}}),
                &["question"],
            )
        },
        mutates: false,
        terminal: true,
    },
    ToolSpec {
        name: "approve",
        description: "Review verdict: the change does what the bead asks. Summarise what you checked.",
        schema: || object(json!({"summary": {"type": "string"}}), &["summary"]),
        mutates: false,
        terminal: true,
    },
    ToolSpec {
        name: "request_changes",
        description: "Review verdict: the change needs work. Give comments the coder can act on (file, line, what and why).",
        schema: || object(json!({"comments": {"type": "string"}}), &["comments"]),
        mutates: false,
        terminal: true,
    },
];

/// The standard tool set (everything but the reviewer's verdicts).
pub const STANDARD: &[&str] = &[
    "read_file",
    "list_files",
    "search_text",
    "edit_file",
    "write_file",
    "run_command",
    "git_diff",
    "create_bead",
    "comment",
    "done",
    "escalate",
];

pub fn spec(name: &str) -> Option<&'static ToolSpec> {
    TOOLS.iter().find(|t| t.name == name)
}

/// Native tool definitions for `names`.
pub fn llm_tools(names: &[String]) -> Vec<llm::Tool> {
    names
        .iter()
        .filter_map(|n| spec(n))
        .map(|t| llm::Tool {
            name: t.name.to_owned(),
            description: t.description.to_owned(),
            parameters: t.parameters(),
        })
        .collect()
}

/// The text protocol, for the system prompt: how to call tools by writing JSON.
pub fn text_protocol(names: &[String]) -> String {
    let mut s = String::from(
        "To use a tool, reply with one JSON object and nothing else: {\"tool\": NAME, \"args\": {...}}.\n\
         Use exactly one tool per reply and wait for its result. Tools:\n",
    );
    for t in names.iter().filter_map(|n| spec(n)) {
        s.push_str(&format!(
            "- {}: {} Arguments: {}\n",
            t.name,
            t.description,
            t.parameters()["properties"]
        ));
    }
    s
}

/// A tool call, parsed and checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    ReadFile {
        path: String,
        start_line: Option<u64>,
        end_line: Option<u64>,
    },
    ListFiles {
        path: Option<String>,
    },
    SearchText {
        pattern: String,
        path: Option<String>,
    },
    EditFile {
        path: String,
        old: String,
        new: String,
    },
    WriteFile {
        path: String,
        content: String,
    },
    RunCommand {
        command: String,
        timeout_s: Option<u64>,
    },
    GitDiff,
    CreateBead {
        title: String,
        description: Option<String>,
        issue_type: Option<String>,
        priority: Option<i64>,
        /// Beads the new one waits for.
        depends_on: Vec<String>,
    },
    Comment {
        text: String,
    },
    Done {
        summary: String,
    },
    Escalate {
        question: String,
        options: Vec<String>,
    },
    Approve {
        summary: String,
    },
    RequestChanges {
        comments: String,
    },
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::ReadFile { .. } => "read_file",
            Action::ListFiles { .. } => "list_files",
            Action::SearchText { .. } => "search_text",
            Action::EditFile { .. } => "edit_file",
            Action::WriteFile { .. } => "write_file",
            Action::RunCommand { .. } => "run_command",
            Action::GitDiff => "git_diff",
            Action::CreateBead { .. } => "create_bead",
            Action::Comment { .. } => "comment",
            Action::Done { .. } => "done",
            Action::Escalate { .. } => "escalate",
            Action::Approve { .. } => "approve",
            Action::RequestChanges { .. } => "request_changes",
        }
    }
}

fn string(args: &Value, key: &str) -> Result<String, String> {
    match args.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!("argument `{key}` must be a string, got {other}")),
        None => Err(format!("missing required argument `{key}`")),
    }
}

fn opt_string(args: &Value, key: &str) -> Result<Option<String>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("argument `{key}` must be a string, got {other}")),
    }
}

/// An optional list of strings (a single string counts as a list of one).
fn string_list(args: &Value, key: &str) -> Result<Vec<String>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("argument `{key}` must list strings, got {v}"))
            })
            .collect(),
        Some(other) => Err(format!(
            "argument `{key}` must be a list of bead ids, got {other}"
        )),
    }
}

fn opt_uint(args: &Value, key: &str) -> Result<Option<u64>, String> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            .map(Some)
            .ok_or_else(|| format!("argument `{key}` must be a positive integer, got {v}")),
    }
}

/// Checks a call to `name` with `args` against its schema (and the persona's allow-list).
pub fn parse_action(name: &str, args: &Value, allowed: &[String]) -> Result<Action, String> {
    if spec(name).is_none() {
        return Err(format!(
            "there is no tool named `{name}`; available: {}",
            allowed.join(", ")
        ));
    }
    if !allowed.iter().any(|a| a == name) {
        return Err(format!(
            "`{name}` is not available to you; available: {}",
            allowed.join(", ")
        ));
    }
    let args = if args.is_null() { &json!({}) } else { args };
    if !args.is_object() {
        return Err(format!(
            "the arguments of `{name}` must be a JSON object, got {args}"
        ));
    }
    Ok(match name {
        "read_file" => Action::ReadFile {
            path: string(args, "path")?,
            start_line: opt_uint(args, "start_line")?,
            end_line: opt_uint(args, "end_line")?,
        },
        "list_files" => Action::ListFiles {
            path: opt_string(args, "path")?,
        },
        "search_text" => Action::SearchText {
            pattern: string(args, "pattern")?,
            path: opt_string(args, "path")?,
        },
        "edit_file" => Action::EditFile {
            path: string(args, "path")?,
            old: string(args, "old")?,
            new: string(args, "new")?,
        },
        "write_file" => Action::WriteFile {
            path: string(args, "path")?,
            content: string(args, "content")?,
        },
        "run_command" => Action::RunCommand {
            command: string(args, "command")?,
            timeout_s: opt_uint(args, "timeout_s")?,
        },
        "git_diff" => Action::GitDiff,
        "create_bead" => {
            Action::CreateBead {
                title: string(args, "title")?,
                description: opt_string(args, "description")?,
                issue_type: opt_string(args, "type")?,
                priority: match args.get("priority") {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.as_i64().map(Ok).unwrap_or_else(|| {
                        crate::bead::parse_priority(v.as_str().unwrap_or(""))
                    })?),
                },
                depends_on: string_list(args, "depends_on")?,
            }
        }
        "comment" => Action::Comment {
            text: string(args, "text")?,
        },
        "done" => Action::Done {
            summary: string(args, "summary")?,
        },
        "escalate" => Action::Escalate {
            question: string(args, "question")?,
            options: match args.get("options") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|o| {
                        o.as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| o.to_string())
                    })
                    .collect(),
                Some(other) => {
                    return Err(format!(
                        "argument `options` must be a list of strings, got {other}"
                    ));
                }
            },
        },
        "approve" => Action::Approve {
            summary: string(args, "summary")?,
        },
        "request_changes" => Action::RequestChanges {
            comments: string(args, "comments")?,
        },
        other => return Err(format!("there is no tool named `{other}`")),
    })
}

/// What a reply without native tool calls holds.
#[derive(Clone, Debug, PartialEq)]
pub enum TextCall {
    /// No tool call: a plain answer.
    None,
    /// `{"tool": name, "args": {...}}` found.
    Call { name: String, args: Value },
    /// It tried to call a tool but the JSON is broken: the reason, to feed back.
    Malformed(String),
}

/// Finds a JSON-in-text tool call: `<think>` blocks and code fences are ignored, the first
/// balanced `{…}` that parses and names a `tool` is taken.
pub fn parse_text_call(text: &str) -> TextCall {
    let cleaned = strip_think(text);
    let mut search_from = 0;
    let mut broken = None;
    while let Some(rel) = cleaned[search_from..].find('{') {
        let start = search_from + rel;
        let Some(end) = balanced_end(&cleaned[start..]) else {
            if cleaned[start..].contains("\"tool\"") {
                broken = Some("the JSON object is not closed".to_owned());
            }
            break;
        };
        let candidate = &cleaned[start..start + end];
        match serde_json::from_str::<Value>(candidate) {
            Ok(v) => {
                if let Some(name) = v.get("tool").and_then(Value::as_str) {
                    let args = v
                        .get("args")
                        .or_else(|| v.get("arguments"))
                        .cloned()
                        .unwrap_or_else(|| json!({}));
                    return TextCall::Call {
                        name: name.to_owned(),
                        args,
                    };
                }
            }
            Err(e) if candidate.contains("\"tool\"") => {
                broken = Some(format!("the tool call is not valid JSON ({e})"));
            }
            Err(_) => {}
        }
        search_from = start + 1;
    }
    match broken {
        Some(reason) => TextCall::Malformed(reason),
        None => TextCall::None,
    }
}

fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Length of the balanced JSON object at the start of `s` (which starts with `{`).
fn balanced_end(s: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        TOOLS.iter().map(|t| t.name.to_owned()).collect()
    }

    #[test]
    fn every_tool_has_an_object_schema_and_parses() {
        for t in TOOLS {
            let p = t.parameters();
            assert_eq!(p["type"], "object", "{}", t.name);
        }
        let a = parse_action(
            "read_file",
            &json!({"path": "a.rs", "start_line": 3, "end_line": "9"}),
            &all(),
        )
        .unwrap();
        assert_eq!(
            a,
            Action::ReadFile {
                path: "a.rs".into(),
                start_line: Some(3),
                end_line: Some(9)
            }
        );
        assert_eq!(
            parse_action("git_diff", &Value::Null, &all()).unwrap(),
            Action::GitDiff
        );
        let c = parse_action(
            "create_bead",
            &json!({"title": "t", "priority": "P1"}),
            &all(),
        )
        .unwrap();
        assert!(matches!(
            c,
            Action::CreateBead {
                priority: Some(1),
                ..
            }
        ));
    }

    #[test]
    fn bad_calls_get_messages_for_the_model() {
        let tools = vec!["read_file".to_owned(), "done".to_owned()];
        assert!(
            parse_action("read_file", &json!({}), &tools)
                .unwrap_err()
                .contains("missing required argument `path`")
        );
        assert!(
            parse_action("read_file", &json!({"path": 3}), &tools)
                .unwrap_err()
                .contains("must be a string")
        );
        assert!(
            parse_action("rm_rf", &json!({}), &tools)
                .unwrap_err()
                .contains("no tool named")
        );
        assert!(
            parse_action("write_file", &json!({"path": "a", "content": ""}), &tools)
                .unwrap_err()
                .contains("not available to you")
        );
    }

    #[test]
    fn text_calls_are_found_leniently() {
        let t = "<think>maybe {\"tool\": \"nope\"}</think>Sure.\n```json\n{\"tool\": \"read_file\", \"args\": {\"path\": \"src/{lib}.rs\"}}\n```";
        assert_eq!(
            parse_text_call(t),
            TextCall::Call {
                name: "read_file".into(),
                args: json!({"path": "src/{lib}.rs"})
            }
        );
        assert_eq!(
            parse_text_call("All done, nothing to call."),
            TextCall::None
        );
        assert_eq!(parse_text_call("Use a map like {a: 1}."), TextCall::None);
        assert!(matches!(
            parse_text_call("{\"tool\": \"done\", \"args\": {\"summary\": \"x\""),
            TextCall::Malformed(_)
        ));
        assert!(matches!(
            parse_text_call("{\"tool\": \"done\", args: {}}"),
            TextCall::Malformed(_)
        ));
    }
}
