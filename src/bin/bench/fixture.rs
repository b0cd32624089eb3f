//! A minimal HTTP/1.1 fixture server on loopback that serves precomputed
//! SCIM 2.0 pages of a generated organisation, for the sync benchmark.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

use custodian::model::{IdentityStatus, OrgSnapshot, PersonStatus};
use serde_json::{json, Value};

pub struct Pages {
    /// (collection, startIndex) -> body
    bodies: HashMap<(String, usize), Vec<u8>>,
}

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// SCIM Users (people and machines) and Groups (resources with NHI members).
pub fn scim_pages(org: &OrgSnapshot, page: usize) -> Pages {
    let mut users: Vec<Value> = Vec::with_capacity(org.people.len() + org.identities.len());
    for p in &org.people {
        let mut u = json!({
            "id": p.external_id, "userName": p.email, "displayName": p.display_name,
            "active": p.status == PersonStatus::Active, "title": p.title,
            "emails": [{"value": p.email, "primary": true}],
            ENTERPRISE: {"department": p.department},
        });
        if let Some(m) = p.manager {
            u[ENTERPRISE]["manager"] = json!({"value": org.people[(m.0 - 1) as usize].external_id});
        }
        users.push(u);
    }
    for i in &org.identities {
        let user_type = match i.kind {
            custodian::model::IdentityKind::AiAgent => "Agent",
            custodian::model::IdentityKind::ServiceAccount => "Service",
            custodian::model::IdentityKind::OauthApp => "Application",
            custodian::model::IdentityKind::ApiKey => "Api",
            custodian::model::IdentityKind::Workload => "Workload",
            custodian::model::IdentityKind::Bot => "Bot",
        };
        let mut u = json!({
            "id": i.external_id, "userName": i.name, "displayName": i.name, "userType": user_type,
            "active": i.status == IdentityStatus::Active, "title": i.purpose,
            ENTERPRISE: {"department": i.team},
        });
        if let Some(o) = i.owner {
            u[ENTERPRISE]["manager"] = json!({"value": org.people[(o.0 - 1) as usize].external_id});
        }
        users.push(u);
    }
    let mut members: Vec<Vec<&str>> = vec![Vec::new(); org.resources.len()];
    for g in &org.grants {
        members[(g.resource.0 - 1) as usize]
            .push(&org.identities[(g.identity.0 - 1) as usize].external_id);
    }
    let groups: Vec<Value> = org
        .resources
        .iter()
        .zip(members)
        .map(|(r, m)| {
            let mut m = m;
            m.sort_unstable();
            m.dedup();
            json!({"id": r.external_id, "displayName": r.name,
                   "members": m.iter().map(|v| json!({"value": v})).collect::<Vec<_>>()})
        })
        .collect();
    let mut bodies = HashMap::new();
    for (name, items) in [("Users", users), ("Groups", groups)] {
        let total = items.len();
        for (n, chunk) in items.chunks(page).enumerate() {
            let start = n * page + 1;
            let body = json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": total, "startIndex": start, "itemsPerPage": chunk.len(), "Resources": chunk,
            });
            bodies.insert((name.to_string(), start), body.to_string().into_bytes());
        }
        if total == 0 {
            let body =
                json!({"totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []});
            bodies.insert((name.to_string(), 1), body.to_string().into_bytes());
        }
    }
    Pages { bodies }
}

/// Serves `pages` on 127.0.0.1 (a thread per connection); returns the base URL.
pub fn serve(pages: Pages) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}/v2", listener.local_addr()?);
    let pages = Arc::new(pages);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let pages = pages.clone();
            std::thread::spawn(move || {
                let _ = handle(stream, &pages);
            });
        }
    });
    Ok(base)
}

fn handle(stream: TcpStream, pages: &Pages) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
                break;
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        let (route, query) = path.split_once('?').unwrap_or((path, ""));
        let collection = route.rsplit('/').next().unwrap_or("").to_string();
        let start = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("startIndex="))
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(1);
        match pages.bodies.get(&(collection, start)) {
            Some(body) => {
                write!(out, "HTTP/1.1 200 OK\r\ncontent-type: application/scim+json\r\ncontent-length: {}\r\n\r\n", body.len())?;
                out.write_all(body)?;
            }
            None => {
                let body = br#"{"status":"404","detail":"no such page"}"#;
                write!(
                    out,
                    "HTTP/1.1 404 Not Found\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                )?;
                out.write_all(body)?;
            }
        }
        out.flush()?;
    }
}
