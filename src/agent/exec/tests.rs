//! Tool execution: hints for near misses, and bead tools that reach beads only through the
//! desk.

use super::*;
use crate::ops::decision::Question;
use std::sync::Mutex;

/// A desk that only records what the tools asked of it.
#[derive(Default)]
struct Recording(Mutex<Vec<String>>);

impl AgentDesk for Recording {
    fn file(
        &self,
        from: &str,
        agent: &str,
        f: &FollowUp,
        noted: &dyn Fn(&Filed),
    ) -> crate::error::Result<Filed> {
        let filed = Filed {
            id: "r-1".into(),
            child: false,
        };
        noted(&filed);
        self.0.lock().unwrap().push(format!(
            "file {from} {agent} {} after {:?}",
            f.title, f.after
        ));
        Ok(filed)
    }
    fn comment(&self, bead: &str, agent: &str, text: &str) -> crate::error::Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("comment {bead} {agent} {text}"));
        Ok(())
    }
    fn escalate(
        &self,
        bead: &str,
        agent: &str,
        q: &Question,
    ) -> crate::error::Result<Option<String>> {
        self.0
            .lock()
            .unwrap()
            .push(format!("escalate {bead} {agent} {}", q.title));
        Ok(Some("r-d".into()))
    }
}

#[tokio::test]
async fn bead_tools_reach_beads_only_through_the_desk() {
    let dir = tempfile::tempdir().unwrap();
    let (wt, tmp) = (dir.path().join("wt"), dir.path().join("tmp"));
    std::fs::create_dir_all(&wt).unwrap();
    std::fs::create_dir_all(&tmp).unwrap();
    let desk = Arc::new(Recording::default());
    let sandbox = Sandbox::new(&wt, &tmp, Vec::new()).unwrap();
    let mut ctx = ToolContext::new(sandbox, desk.clone(), "b-1", "coder").unwrap();
    let filed = ctx
        .execute(&Action::CreateBead {
            title: "Follow-up".into(),
            description: None,
            issue_type: None,
            priority: None,
            depends_on: vec!["b-0".into()],
        })
        .await;
    assert!(matches!(&filed, Outcome::Result(r) if r.ok), "{filed:?}");
    assert!(ctx.quota.is_followup("r-1"), "the run heard of it");
    ctx.execute(&Action::Comment {
        text: "noted".into(),
    })
    .await;
    let asked = ctx
        .execute(&Action::Escalate {
            question: "Which way?".into(),
            options: vec![],
        })
        .await;
    assert!(matches!(asked, Outcome::Finish(Finish::Escalated { .. })));
    assert_eq!(
        *desk.0.lock().unwrap(),
        [
            "file b-1 coder Follow-up after [\"b-0\"]",
            "comment b-1 coder noted",
            "escalate b-1 coder Which way?",
        ]
    );
}

#[test]
fn near_miss_points_at_the_closest_lines() {
    let text = "fn a() {\n    let x = 1;\n    x + 1\n}\nfn b() {}\n";
    let hint = no_match_hint(text, "let x = 1;\nx + 2", "a.rs");
    assert!(hint.contains("lines 2-3"), "{hint}");
    assert!(hint.contains("    2|     let x = 1;"), "{hint}");
    let ws = no_match_hint(text, "let x = 1;\n  x + 1", "a.rs");
    assert!(ws.contains("only in whitespace"), "{ws}");
    assert!(no_match_hint(text, "zzz", "a.rs").contains("no similar lines"));
}
