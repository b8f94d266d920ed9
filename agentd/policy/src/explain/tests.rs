use std::path::PathBuf;

use super::*;
use crate::compile::Loader;
use crate::model::Vars;

fn vars() -> Vars {
    Vars {
        home: PathBuf::from("/home/u"),
        workspace: PathBuf::from("/w"),
        user: "u".into(),
    }
}

fn compile(text: &str) -> Policy {
    Loader::new(vec![])
        .load_str("t", std::path::Path::new("t.toml"), text, &vars())
        .unwrap()
}

const RULES: &str = r#"
version = 1
[filesystem]
write = ["/w"]
hide = ["/w/**/.env"]
[[rule]]
id = "a-allow"
on = "open"
path = "/w/s"
action = "allow"
reason = "r1"
[[rule]]
id = "b-ask"
on = "open"
path = "/w/s/x"
action = "ask"
reason = "r2"
[[rule]]
id = "c-deny"
on = "open"
path = "/w/s/x/y"
action = "deny"
reason = "r3"
[[rule]]
id = "d-deny"
on = "open"
path = "/w/s/**/y"
action = "deny"
errno = "ENOENT"
reason = "r4"
[[rule]]
id = "e-allow"
on = "open"
path = "/w/.env"
action = "allow"
reason = "r5"
"#;

fn open(p: &str) -> Event {
    Event::Open {
        path: PathBuf::from(p),
        access: OpenAccess::Read,
    }
}

#[test]
fn lists_every_match_and_names_the_winner() {
    let p = compile(RULES);
    let e = explain(&p, &open("/w/s/x/y"));
    let ids: Vec<&str> = e.matched.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["a-allow", "b-ask", "c-deny", "d-deny"]);
    assert_eq!(e.decision, decide(&p, &open("/w/s/x/y")));
    assert_eq!(e.decision.rule_id.as_deref(), Some("c-deny"));
    assert_eq!(
        e.why,
        "deny beats ask and allow (deny > pause > ask > allow); of the 2 deny rules the first \
         in policy order, c-deny, decides"
    );
    assert!(e.to_string().contains("* c-deny"), "{e}");
}

#[test]
fn single_rule_and_default_and_unhiding() {
    let p = compile(RULES);
    let one = explain(&p, &open("/w/s/a"));
    assert_eq!(one.why, "rule a-allow is the only matching rule");
    let none = explain(&p, &open("/w/other"));
    assert!(none.matched.is_empty());
    assert_eq!(none.why, "no rule matches: the default for open decides");
    assert_eq!(none.decision.reason, "inside the write grant /w");
    let hidden = explain(&p, &open("/w/.env"));
    assert_eq!(hidden.decision.verdict, Verdict::Deny { errno: 13 });
    assert!(hidden.why.contains("never un-hides"), "{}", hidden.why);
}
