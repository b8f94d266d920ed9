use super::*;

fn req(run: &str, uid: u32, target: &str) -> PendingRequest {
    PendingRequest {
        id: String::new(),
        run: run.into(),
        uid,
        kind: "connect".into(),
        target: target.into(),
        argv: None,
        access: None,
        argv_hidden: 0,
        pid: 1,
        comm: "curl".into(),
        rule: Some("db".into()),
        reason: "production database".into(),
        pause: false,
        waiting: 0,
        deadline_ms: now_ms() + 60_000,
        key: String::new(),
    }
}

fn owner(uid: u32) -> Asker {
    Asker { uid, admin: false }
}

#[test]
fn identical_requests_collapse_and_one_answer_reaches_all() {
    let a = Approvals::default();
    let (id1, _, rx1) = a.submit(req("r1", 1000, "127.0.0.1:5432"));
    let (id2, _, rx2) = a.submit(req("r1", 1000, "127.0.0.1:5432"));
    let (id3, _, _rx3) = a.submit(req("r1", 1000, "127.0.0.1:6379"));
    assert_eq!(id1, id2);
    assert_ne!(id1, id3);
    let listed = a.list(owner(1000));
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed.iter().find(|p| p.id == id1).map(|p| p.waiting),
        Some(2)
    );
    let by = Answer::Allow {
        scope: ApprovalScope::Once,
        by: 1000,
    };
    a.answer(&id1, owner(1000), by).unwrap();
    assert_eq!(rx1.try_recv(), Ok(by));
    assert_eq!(rx2.try_recv(), Ok(by));
    assert_eq!(a.list(owner(1000)).len(), 1);
}

#[test]
fn only_owner_root_or_admin_may_answer_or_see() {
    let a = Approvals::default();
    let (id, _, _rx) = a.submit(req("r1", 1000, "x"));
    let deny = Answer::Deny {
        errno: None,
        by: 2000,
    };
    assert_eq!(
        a.answer(&id, owner(2000), deny).unwrap_err().code,
        ErrorCode::PermissionDenied
    );
    assert!(a.list(owner(2000)).is_empty());
    assert_eq!(
        a.list(Asker {
            uid: 2000,
            admin: true
        })
        .len(),
        1
    );
    assert!(a.answer(&id, owner(0), deny).is_ok());
}

#[test]
fn expire_times_out_every_waiter_unless_answered_first() {
    let a = Approvals::default();
    let (id, _, rx1) = a.submit(req("r1", 1000, "x"));
    let (_, _, rx2) = a.submit(req("r1", 1000, "x"));
    assert_eq!(a.expire(&id, &rx1), Answer::Timeout);
    assert_eq!(rx2.try_recv(), Ok(Answer::Timeout));
    assert!(a.list(owner(0)).is_empty());

    let (id, _, rx) = a.submit(req("r1", 1000, "y"));
    let allow = Answer::Allow {
        scope: ApprovalScope::Run,
        by: 1000,
    };
    a.answer(&id, owner(1000), allow).unwrap();
    assert_eq!(
        a.expire(&id, &rx),
        allow,
        "an answer that beat the deadline wins"
    );
}

#[test]
fn answer_by_unknown_or_ambiguous_prefix_fails() {
    let a = Approvals::default();
    let _k = a.submit(req("r1", 1000, "x"));
    assert_eq!(
        a.answer("zzzzzzz", owner(0), Answer::Timeout)
            .unwrap_err()
            .code,
        ErrorCode::PermissionDenied
    );
    assert!(a.answer("", owner(0), Answer::Timeout).is_err());
}

#[test]
fn events_are_published_for_pending_and_decided() {
    let a = Approvals::default();
    let mut sub = a.subscribe();
    let (id, _, _rx) = a.submit(req("r1", 1000, "x"));
    a.answer(
        &id,
        owner(1000),
        Answer::Deny {
            errno: Some(1),
            by: 1000,
        },
    )
    .unwrap();
    assert_eq!(sub.try_recv().unwrap().kind, "pending");
    let decided = sub.try_recv().unwrap();
    assert_eq!(
        (decided.kind.as_str(), decided.by.as_deref()),
        ("decided", Some("uid:1000"))
    );
}

#[test]
fn cancel_run_drops_its_requests() {
    let a = Approvals::default();
    let (_, _, rx) = a.submit(req("r1", 1000, "x"));
    let _other = a.submit(req("r2", 1000, "x"));
    a.cancel_run("r1");
    assert_eq!(a.list(owner(0)).len(), 1);
    assert!(rx.recv().is_err(), "the waiter sees the request gone");
}
