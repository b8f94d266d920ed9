use std::path::{Path, PathBuf};

use super::*;
use crate::compile::Loader;

fn vars() -> Vars {
    Vars {
        home: PathBuf::from("/home/u"),
        workspace: PathBuf::from("/w"),
        user: "u".into(),
    }
}

fn warnings(text: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("agentd-lint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("p{}.toml", text.len()));
    std::fs::write(&file, text).unwrap();
    let (p, origins) = Loader::new(vec![])
        .load_traced(file.to_str().unwrap(), &vars())
        .unwrap();
    let out = lint(&p, &origins, &vars())
        .into_iter()
        .map(|w| {
            let at =
                w.at.rsplit_once(':')
                    .map_or(String::new(), |(_, l)| l.to_string());
            format!("{at}: {}", w.message)
        })
        .collect();
    let _ = std::fs::remove_file(&file);
    out
}

#[test]
fn rules_that_can_never_match() {
    let w = warnings(
        r#"version = 1
[filesystem]
read = ["/usr"]
write = ["/w"]
exec = ["/usr/bin"]
[[rule]]
id = "outside"
on = "open"
path = "/srv/data"
action = "deny"
reason = "x"
[[rule]]
id = "readonly"
on = "open"
path = "/usr/share"
access = "write"
action = "ask"
reason = "x"
[[rule]]
id = "inside"
on = "open"
path = "/w/**/.git/hooks"
access = "write"
action = "deny"
reason = "x"
[[rule]]
id = "noexec"
on = "exec"
path = "/opt/x/bin/tool"
action = "ask"
reason = "x"
[[rule]]
id = "anywhere"
on = "exec"
path = "**/psql"
action = "ask"
reason = "x"
[[rule]]
id = "remote"
on = "connect"
addr = "10.0.0.0/8:5432"
action = "ask"
reason = "x"
[[rule]]
id = "local"
on = "connect"
addr = "127.0.0.1:5432"
action = "ask"
reason = "x"
[[rule]]
id = "all"
on = "connect"
addr = "0.0.0.0/0:5432"
action = "ask"
reason = "x"
"#,
    );
    assert_eq!(w.len(), 4, "{w:#?}");
    assert!(w[0].starts_with("6: rule `outside` can never match: /srv/data is outside"));
    assert!(w[1].starts_with(
        "12: rule `readonly` can never match: /usr/share is outside every write grant"
    ));
    assert!(w[2].starts_with("26: rule `noexec` can never match"));
    assert!(w[3].starts_with("38: rule `remote` can never match: network mode \"none\""));
}

#[test]
fn grants_that_expose_secrets() {
    let w = warnings(
        "version = 1\n[filesystem]\nread = [\"${HOME}\"]\nhide = [\"${HOME}/.ssh\"]\n\
         write = [\"${HOME}/.aws/cli\", \"${HOME}/.cargo\"]\n",
    );
    assert!(w.iter().all(|m| !m.contains("/home/u/.ssh ")), "{w:#?}");
    assert!(
        w.contains(
            &"3: read grant /home/u exposes /home/u/.aws (AWS credentials); \
        add it to [filesystem] hide"
                .to_string()
        ),
        "{w:#?}"
    );
    assert!(w
        .iter()
        .any(|m| m.starts_with("5: write grant /home/u/.aws/cli exposes /home/u/.aws")));
    assert!(w
        .iter()
        .any(|m| m
            .starts_with("5: write grant /home/u/.cargo exposes /home/u/.cargo/credentials.toml")));
    assert_eq!(w.len(), HOME_SECRETS.len() - 1 + 1 + 2, "{w:#?}");
    let _ = Path::new("");
}
