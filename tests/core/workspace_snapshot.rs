//! The team workspace's offline snapshot: when the workspace cannot be
//! reached, the app shows what the member's login last read, read-only.
//! The member reaches PostgreSQL through a TCP relay the test can cut, so
//! "unreachable" is a real refused connection at the same address.
//! Skipped without `CUSTODIAN_TEST_PG`.

use std::io::Read as _;
use std::net::TcpListener;

use custodian::campaigns::{Decision, DecisionInput, QueueQuery, ReviewItemId};
use custodian::connection::{refresh_snapshot_in, snapshot_path_in};
use custodian::ops::open_or_snapshot_in;
use custodian::store::pg::PgTarget;
use custodian::store::{Location, Store};
use custodian::views::InventoryQuery;
use custodian::workspace::{role_prefix, Role};
use custodian::{ops, ErrorCode};

use crate::util::now;
use crate::workspace::have_pg;

#[path = "../support/relay.rs"]
mod relay;
use relay::Relay;

fn snapshot_bytes(path: &std::path::Path) -> Vec<u8> {
    let mut b = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut b)
        .unwrap();
    b
}

#[test]
fn an_unreachable_workspace_shows_the_members_last_snapshot_read_only() {
    if !have_pg() {
        eprintln!("skipped: CUSTODIAN_TEST_PG is not set");
        return;
    }
    let (mut logins, t, store) = crate::workspace::demo_database(11);
    let db = logins.db.clone();
    let owner = store.resolve_person("1").unwrap();
    let admin_p: i64 = store
        .raw_db()
        .query_row(
            "SELECT max(id) FROM people WHERE status = 'active'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let admin = logins.create("admin");
    let prefix = role_prefix(&db).unwrap();
    assert!(store.workspace_init(&prefix, &admin, admin_p).unwrap());

    let as_admin = Store::open_postgres(&logins.target(&admin)).unwrap();
    let own = logins.create("owner");
    as_admin
        .workspace_member_add(&own, owner, &[Role::CampaignOwner])
        .unwrap();
    let mut as_owner = Store::open_postgres(&logins.target(&own)).unwrap();
    let c = crate::util::identities_campaign("Snapshot certification", owner, 14);
    let campaign = as_owner.create_campaign(owner, &c, now()).unwrap();
    let campaign_n: i64 = serde_json::to_value(campaign).unwrap().as_i64().unwrap();
    // The reviewer: the campaign's busiest who is neither owner nor admin.
    let (reviewer_p, all_items): (i64, i64) = store
        .raw_db()
        .query_row(
            "SELECT reviewer_id, (SELECT count(*) FROM campaign_items WHERE campaign_id = ?1)
             FROM campaign_items WHERE campaign_id = ?1 AND reviewer_id NOT IN (?2, ?3)
             GROUP BY reviewer_id ORDER BY count(*) DESC, reviewer_id LIMIT 1",
            custodian::store::db::params![campaign_n, owner, admin_p],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let rev = logins.create("rev");
    as_admin
        .workspace_member_add(&rev, reviewer_p, &[Role::Reviewer])
        .unwrap();

    // The reviewer's app reaches the workspace through the relay.
    let mut relay = Relay::start(
        (
            t.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
            t.port.unwrap_or(5432),
        ),
        0,
    );
    let url = logins.url(&rev).replacen(
        &format!(":{}/", t.port.unwrap_or(5432)),
        &format!(":{}/", relay.port),
        1,
    );
    let location = Location::parse(&url).unwrap();
    let data = tempfile::tempdir().unwrap();
    let path = snapshot_path_in(data.path(), &location).unwrap().unwrap();

    let mut live = open_or_snapshot_in(data.path(), &location, now()).unwrap();
    assert!(live.snapshot().is_none(), "reachable: the workspace itself");
    let q = QueueQuery::default();
    let live_queue = ops::review_queue(&live, reviewer_p, &q).unwrap();
    assert!(live_queue.pending >= 2, "{live_queue:?}");
    assert!(
        live_queue.total < all_items,
        "the reviewer sees only their own items"
    );
    let live_inventory = ops::inventory(&live, &InventoryQuery::default(), now()).unwrap();
    let info = refresh_snapshot_in(data.path(), &location, now()).unwrap();
    assert_eq!(info.login, rev);
    assert_eq!(info.person_id, Some(reviewer_p));
    assert_eq!(info.roles, vec!["reviewer".to_string()]);
    assert!(info.rows > live_inventory.total, "{info:?}");
    let bytes = snapshot_bytes(&path);
    assert!(
        !bytes.starts_with(b"SQLite format 3\0"),
        "the snapshot is encrypted like the cache"
    );
    assert!(!path.with_extension("db.partial").exists());

    // The reviewer decides one item while connected.
    let first = live_queue.items[0].id;
    ops::decide(
        &mut live,
        reviewer_p,
        &DecisionInput {
            items: vec![first],
            decision: Decision::Keep,
            justification: "still used by the nightly ledger run".into(),
            new_owner: None,
            follow_recommendation: false,
        },
        now(),
    )
    .unwrap();
    drop(live);

    // The workspace goes away: a refresh fails and leaves the snapshot as it was.
    relay.cut();
    let e = refresh_snapshot_in(data.path(), &location, now()).unwrap_err();
    assert_eq!(e.code, ErrorCode::Network, "{e:?}");
    assert_eq!(
        snapshot_bytes(&path),
        bytes,
        "the last good snapshot is kept"
    );

    let mut snap = open_or_snapshot_in(data.path(), &location, now()).unwrap();
    assert_eq!(snap.snapshot(), Some(&info));
    let who = ops::who_am_i(&snap).unwrap();
    assert_eq!(who.mode, custodian::connection::ConnectionMode::Workspace);
    assert_eq!(who.login.as_deref(), Some(rev.as_str()));
    assert_eq!(who.person.as_ref().map(|p| p.id), Some(reviewer_p));
    assert_eq!(who.roles, vec![custodian::connection::RoleView::Reviewer]);
    assert!(!who.reachable);
    assert_eq!(who.snapshot.as_ref(), Some(&info));
    assert_eq!(
        who.location,
        PgTarget::parse(&url).unwrap().display(),
        "no password shown"
    );

    // What the login read, as it was before the decision.
    assert_eq!(ops::actor(&snap, None).unwrap(), reviewer_p);
    let snap_queue = ops::review_queue(&snap, reviewer_p, &q).unwrap();
    assert_eq!(snap_queue.total, live_queue.total);
    assert_eq!(snap_queue.pending, live_queue.pending);
    let snap_inventory = ops::inventory(&snap, &InventoryQuery::default(), now()).unwrap();
    assert_eq!(snap_inventory.total, live_inventory.total);
    assert_eq!(
        snap_inventory.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        live_inventory.rows.iter().map(|r| r.id).collect::<Vec<_>>()
    );
    ops::identity(&snap, live_inventory.rows[0].id, now()).unwrap();
    ops::summary(&snap).unwrap();
    let audit = ops::verify_audit(&snap).unwrap();
    assert!(audit.ok, "{audit:?}");
    assert!(audit.entries > 0);

    // Nothing can be changed, and nothing is kept to be replayed later.
    let second = snap_queue
        .items
        .iter()
        .map(|i| i.id)
        .find(|i| *i != first)
        .unwrap();
    let e = ops::decide(
        &mut snap,
        reviewer_p,
        &DecisionInput {
            items: vec![second],
            decision: Decision::Retire,
            justification: "offline".into(),
            new_owner: None,
            follow_recommendation: false,
        },
        now(),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::ReadOnly, "{e:?}");
    let e = ops::set_acting_person(&mut snap, "1", now()).unwrap_err();
    assert_eq!(e.code, ErrorCode::Forbidden, "{e:?}");
    drop(snap);
    assert_eq!(
        snapshot_bytes(&path),
        bytes,
        "the snapshot file is unchanged"
    );

    // Back online: the workspace again, and a fresh snapshot with the decision.
    relay.restore();
    let live = open_or_snapshot_in(data.path(), &location, now()).unwrap();
    assert!(live.snapshot().is_none());
    let after = ops::review_queue(
        &live,
        reviewer_p,
        &QueueQuery {
            include_decided: true,
            ..QueueQuery::default()
        },
    )
    .unwrap();
    assert_eq!(after.pending, live_queue.pending - 1);
    let by_id = |id: ReviewItemId| after.items.iter().find(|i| i.id == id).unwrap();
    assert_eq!(by_id(first).decision, Some(Decision::Keep));
    assert_eq!(
        by_id(second).decision,
        None,
        "the offline attempt was not replayed"
    );
    drop(live);
    let later = now() + chrono::Duration::minutes(20);
    let info2 = refresh_snapshot_in(data.path(), &location, later).unwrap();
    assert_eq!(
        info2.taken_at,
        later.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    relay.cut();
    let snap = open_or_snapshot_in(data.path(), &location, now()).unwrap();
    assert_eq!(
        ops::review_queue(&snap, reviewer_p, &q).unwrap().pending,
        live_queue.pending - 1
    );
}

#[test]
fn a_solo_cache_has_no_snapshot_and_a_missing_snapshot_is_the_workspaces_error() {
    let data = tempfile::tempdir().unwrap();
    let file = Location::File(data.path().join("c.db"));
    assert_eq!(snapshot_path_in(data.path(), &file).unwrap(), None);
    // A workspace nobody answers at, with no snapshot yet: its own error.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let gone = Location::parse(&format!(
        "postgresql://nobody@127.0.0.1:{port}/custodian?sslmode=disable&connect_timeout=2"
    ))
    .unwrap();
    let e = open_or_snapshot_in(data.path(), &gone, now()).unwrap_err();
    assert_eq!(e.code, ErrorCode::Network, "{e:?}");
    // Two workspaces (or two logins) never share a snapshot.
    let other = Location::parse(&format!(
        "postgresql://somebody@127.0.0.1:{port}/custodian?sslmode=disable"
    ))
    .unwrap();
    assert_ne!(
        snapshot_path_in(data.path(), &gone).unwrap(),
        snapshot_path_in(data.path(), &other).unwrap()
    );
}
