//! Ranged retrieval (`member;range=0-1499`) as a Windows DC serves it, from
//! a fixture LDAP server: Samba does not range values on its own (its
//! `ranged_results` module answers only when a range is asked for), and a
//! Windows DC cannot run here.
//!
//! What a Windows DC does (MS-ADTS 3.1.1.3.1.3.3, "Range Retrieval of
//! Attribute Values"; `MaxValRange`, 1500 by default, MS-ADTS 3.1.1.3.4.6):
//! a multi-valued attribute with more values than `MaxValRange` is returned
//! as `member;range=0-1499` and not as `member`; the client asks for
//! `member;range=1500-*` and gets `member;range=1500-2999`, and so on, until
//! a chunk whose range ends in `*` (`member;range=3000-*`).
//!
//! The server speaks enough LDAPv3 (RFC 4511) for the connector: simple
//! bind, search (base and subtree; the paged-results control is not
//! answered, which RFC 2696 allows: the whole result in one page), unbind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use ldap3::asn1::{parse_tag, StructureTag, TagClass, PL};
use serde_json::json;

use crate::harness::SourceEnv;

const BASE: &str = "DC=corp,DC=test";
const MAX_VAL_RANGE: usize = 1500;

/// One directory entry: DN and (attribute, values).
type Entry = (String, Vec<(String, Vec<Vec<u8>>)>);

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn int(tag: u8, v: i64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let mut i = 0;
    while i < 7 && ((b[i] == 0 && b[i + 1] & 0x80 == 0) || (b[i] == 0xff && b[i + 1] & 0x80 != 0)) {
        i += 1;
    }
    tlv(tag, &b[i..])
}

fn octets(v: &[u8]) -> Vec<u8> {
    tlv(0x04, v)
}

fn message(id: i64, op: Vec<u8>) -> Vec<u8> {
    let mut c = int(0x02, id);
    c.extend(op);
    tlv(0x30, &c)
}

/// An LDAPResult in an application tag (bind 1, search done 5).
fn result(app: u8, code: i64) -> Vec<u8> {
    let mut c = int(0x0a, code);
    c.extend(octets(b""));
    c.extend(octets(b""));
    tlv(0x60 | app, &c)
}

fn entry(dn: &str, attrs: &[(String, Vec<Vec<u8>>)]) -> Vec<u8> {
    let mut list = vec![];
    for (name, vals) in attrs {
        let mut set = vec![];
        for v in vals {
            set.extend(octets(v));
        }
        let mut a = octets(name.as_bytes());
        a.extend(tlv(0x31, &set));
        list.extend(tlv(0x30, &a));
    }
    let mut c = octets(dn.as_bytes());
    c.extend(tlv(0x30, &list));
    tlv(0x64, &c)
}

fn text(t: &StructureTag) -> String {
    match &t.payload {
        PL::P(b) => String::from_utf8_lossy(b).into_owned(),
        PL::C(_) => String::new(),
    }
}

fn number(t: &StructureTag) -> i64 {
    match &t.payload {
        PL::P(b) => b.iter().fold(0i64, |a, x| (a << 8) | i64::from(*x)),
        PL::C(_) => 0,
    }
}

/// The fixture directory: accounts, groups (the big one complete), and
/// what it was asked for (base DN and attributes of each search).
struct Directory {
    accounts: Vec<Entry>,
    groups: Vec<Entry>,
    asked: Mutex<Vec<String>>,
}

impl Directory {
    /// Entries a search returns, with ranged attributes as a DC sends them.
    fn search(&self, base: &str, scope: i64, attrs: &[String]) -> Vec<Vec<u8>> {
        self.asked
            .lock()
            .unwrap()
            .push(format!("{base} {}", attrs.join(",")));
        let wants = |a: &str| attrs.iter().any(|x| x.eq_ignore_ascii_case(a));
        if scope == 0 {
            if base == BASE {
                return vec![entry(
                    BASE,
                    &[("maxPwdAge".into(), vec![b"-36288000000000".to_vec()])],
                )];
            }
            // A ranged read: `member;range=<lo>-*`.
            let Some(group) = self.groups.iter().find(|(dn, _)| dn == base) else {
                return vec![];
            };
            let mut out = vec![];
            for a in attrs {
                let Some((name, range)) = a.split_once(";range=") else {
                    continue;
                };
                let lo: usize = range.trim_end_matches("-*").parse().unwrap_or(0);
                if let Some((_, vals)) = group.1.iter().find(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    out.push(ranged(name, vals, lo));
                }
            }
            return vec![entry(base, &out)];
        }
        let list = if wants("servicePrincipalName") {
            &self.accounts
        } else if wants("member") {
            &self.groups
        } else {
            return vec![];
        };
        list.iter()
            .map(|(dn, attrs)| {
                let sent: Vec<(String, Vec<Vec<u8>>)> = attrs
                    .iter()
                    .map(|(n, vals)| {
                        if vals.len() > MAX_VAL_RANGE {
                            ranged(n, vals, 0)
                        } else {
                            (n.clone(), vals.clone())
                        }
                    })
                    .collect();
                entry(dn, &sent)
            })
            .collect()
    }
}

/// `name;range=lo-hi` with at most MAX_VAL_RANGE values from `lo`; the last
/// chunk's range ends in `*`.
fn ranged(name: &str, vals: &[Vec<u8>], lo: usize) -> (String, Vec<Vec<u8>>) {
    let hi = (lo + MAX_VAL_RANGE).min(vals.len());
    let label = if hi == vals.len() {
        format!("{name};range={lo}-*")
    } else {
        format!("{name};range={lo}-{}", hi - 1)
    };
    (label, vals[lo.min(vals.len())..hi].to_vec())
}

fn serve(dir: Arc<Directory>, mut conn: TcpStream) {
    let mut buf: Vec<u8> = vec![];
    let mut chunk = [0u8; 65536];
    loop {
        let (used, tag) = match parse_tag(&buf) {
            Ok((rest, tag)) => (buf.len() - rest.len(), tag),
            Err(_) => match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    continue;
                }
            },
        };
        buf.drain(..used);
        let PL::C(parts) = tag.payload else { return };
        let (Some(id), Some(op)) = (parts.first(), parts.get(1)) else {
            return;
        };
        let id = number(id);
        if op.class != TagClass::Application {
            return;
        }
        let reply = match op.id {
            0 => message(id, result(1, 0)),
            2 => return,
            3 => {
                let PL::C(ref req) = op.payload else { return };
                let base = req.first().map(text).unwrap_or_default();
                let scope = req.get(1).map(number).unwrap_or(2);
                let attrs: Vec<String> = match req.last().map(|t| &t.payload) {
                    Some(PL::C(list)) => list.iter().map(text).collect(),
                    _ => vec![],
                };
                let mut out = vec![];
                for e in dir.search(&base, scope, &attrs) {
                    out.extend(message(id, e));
                }
                out.extend(message(id, result(5, 0)));
                out
            }
            _ => message(id, result(1, 53)),
        };
        if conn.write_all(&reply).is_err() {
            return;
        }
    }
}

fn start(dir: Directory) -> (String, Arc<Directory>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ldap://{}", listener.local_addr().unwrap());
    let dir = Arc::new(dir);
    let d = dir.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let d = d.clone();
            std::thread::spawn(move || serve(d, conn));
        }
    });
    (url, dir)
}

fn guid(n: u8) -> Vec<u8> {
    let mut g = vec![0x11u8; 16];
    g[15] = n;
    g
}

fn attr(name: &str, vals: &[&str]) -> (String, Vec<Vec<u8>>) {
    (
        name.to_string(),
        vals.iter().map(|v| v.as_bytes().to_vec()).collect(),
    )
}

#[test]
fn a_group_larger_than_max_val_range_keeps_every_member() {
    // Backup Operators with 3,200 members (three chunks: 0-1499,
    // 1500-2999, 3000-*); the group tier-ops, which holds the service
    // account svc-late, is member number 3,100: only the last chunk names
    // it. svc-early is a direct member, in the first chunk.
    let ops = format!("CN=tier-ops,OU=Groups,{BASE}");
    let early = format!("CN=svc-early,OU=Services,{BASE}");
    let late = format!("CN=svc-late,OU=Services,{BASE}");
    let mut members: Vec<String> = (0..3200)
        .map(|i| format!("CN=user{i:04},OU=People,{BASE}"))
        .collect();
    members[5] = early.clone();
    members[3100] = ops.clone();
    let account = |dn: &str, name: &str, n: u8| -> Entry {
        (
            dn.to_string(),
            vec![
                attr("objectClass", &["top", "person", "user"]),
                ("objectGUID".into(), vec![guid(n)]),
                attr("sAMAccountName", &[name]),
                attr("servicePrincipalName", &[&format!("HTTP/{name}.corp.test")]),
                attr("userAccountControl", &["512"]),
            ],
        )
    };
    let backup = format!("CN=Backup Operators,CN=Builtin,{BASE}");
    let dir = Directory {
        accounts: vec![
            account(&early, "svc-early", 1),
            account(&late, "svc-late", 2),
        ],
        groups: vec![
            (
                backup.clone(),
                vec![
                    attr("cn", &["Backup Operators"]),
                    ("objectGUID".into(), vec![guid(10)]),
                    (
                        "member".into(),
                        members.iter().map(|m| m.as_bytes().to_vec()).collect(),
                    ),
                ],
            ),
            (
                ops.clone(),
                vec![
                    attr("cn", &["tier-ops"]),
                    ("objectGUID".into(), vec![guid(11)]),
                    attr("member", &[&late]),
                ],
            ),
        ],
        asked: Mutex::new(vec![]),
    };
    let (url, dir) = start(dir);
    let mut env = SourceEnv::new(
        "ldap",
        "Windows DC",
        json!({"url": url, "allow_plain": true, "bind_dn": "CN=reader,CN=Users,DC=corp,DC=test", "base_dn": BASE}),
        "fixture-password",
    );
    let out = env.sync().unwrap();
    assert!(out.full);

    let grants = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = env
            .detail(name)
            .grants
            .iter()
            .map(|g| {
                format!(
                    "{} on {} {}",
                    g.permission,
                    g.resource_name,
                    g.privilege.as_str()
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(grants("svc-early"), ["member on Backup Operators admin"]);
    assert_eq!(
        grants("svc-late"),
        [
            "member on tier-ops read",
            "member via tier-ops on Backup Operators admin",
        ],
        "tier-ops is named only in the last chunk of Backup Operators' members"
    );
    // The connector asked for the rest, chunk by chunk, on the group itself.
    let asked: Vec<String> = dir
        .asked
        .lock()
        .unwrap()
        .iter()
        .filter(|a| a.contains(";range="))
        .cloned()
        .collect();
    assert_eq!(
        asked,
        [
            format!("{backup} member;range=1500-*"),
            format!("{backup} member;range=3000-*"),
        ]
    );
    let run = crate::harness::last_run(&env);
    assert_eq!(run.status, "succeeded", "{run:?}");
}
