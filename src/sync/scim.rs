//! SCIM 2.0 (RFC 7643/7644): Users with the enterprise extension (manager,
//! department), `active`, and Groups.
//!
//! Mapping: a User whose `userType` names a machine (service, bot, agent,
//! application, machine, workload, api) is a non-human identity; its
//! enterprise `manager` is its owner. Every other User is a person. Groups
//! are resources; an NHI's group membership is a grant (`member`, admin when
//! the group name says so).
//!
//! Reading: attribute names and schema URNs are case-insensitive (RFC 7643
//! §2.1), so `Resources`/`resources`, `totalResults`, `userName` are read in
//! any case (Entra's SCIM API sends `resources` and `nextCursor`). Paging is
//! by index (`startIndex`/`count`) and follows RFC 9865 cursors: a page
//! carrying `nextCursor` is followed with `cursor=` (setting `pagination`:
//! `auto`, the default; `index`; or `cursor` to start with `cursor=`).
//! A User or Group without an `id`, or not an object, is skipped and named
//! in the run's warnings (page and position); a page that is not a
//! ListResponse fails the run. A listing that returns fewer resources than
//! its `totalResults` is a warning.
//!
//! Settings: `base_url` (e.g. `https://idp.example/scim/v2`), optional
//! `page_size` (default 100), `pagination`. Secret: the bearer token.
//! Always a full fetch: SCIM has no deletion feed, and group membership
//! changes do not touch the members' `meta.lastModified`.

use serde_json::{Map, Value};

use super::records::*;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AgentClass, IdentityKind, IdentityStatus, PersonStatus, Privilege, Sensitivity,
};

/// The settings of a SCIM source (see `super::settings`).
pub const SETTINGS: &[super::settings::Setting] = {
    use super::settings::{Setting, SettingType as T};
    &[
        Setting::required(
            "base_url",
            T::Url,
            "the SCIM base URL, e.g. https://idp.example/scim/v2",
        ),
        Setting::optional(
            "page_size",
            T::Integer,
            Some("100"),
            "resources per page (1 to 1000)",
        ),
        Setting::optional(
            "pagination",
            T::String,
            Some("auto"),
            "auto, index or cursor (RFC 9865)",
        ),
    ]
};

pub struct ScimSource;

/// The enterprise extension's URN, lower-cased like every key we read.
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user";
/// The most pages a listing may take before we call it a loop.
const MAX_PAGES: u64 = 1_000_000;

/// Attribute names and schema URNs are case-insensitive (RFC 7643 §2.1):
/// every object key is lower-cased once, at parse time, so `Resources`,
/// `resources` and `RESOURCES` read alike. When two keys differ only in
/// case, the first one wins.
pub fn fold_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, v) in m {
                let k = k.to_lowercase();
                if !out.contains_key(&k) {
                    out.insert(k, fold_keys(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(fold_keys).collect()),
        other => other,
    }
}

/// How the listing pages (setting `pagination`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paging {
    /// Index paging (`startIndex`/`count`), switching to the cursor as soon
    /// as a page carries `nextCursor` (RFC 9865).
    Auto,
    /// Index paging only.
    Index,
    /// Cursor paging from the start (`cursor=`, then `cursor=<nextCursor>`).
    Cursor,
}

impl Paging {
    pub fn parse(s: Option<&str>) -> Result<Paging> {
        match s.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("auto") => Ok(Paging::Auto),
            Some("index") => Ok(Paging::Index),
            Some("cursor") => Ok(Paging::Cursor),
            Some(other) => Err(Error::invalid(format!(
                "the SCIM setting 'pagination' is '{other}'; expected auto, index or cursor"
            ))),
        }
    }
}

/// One ListResponse page, read tolerantly (keys already folded).
#[derive(Debug)]
pub struct Page {
    pub resources: Vec<Value>,
    pub total_results: Option<u64>,
    pub next_cursor: Option<String>,
}

/// Reads a ListResponse. A body that is not an object, or whose `Resources`
/// is present but not a list, is a broken page (the run fails): we cannot
/// tell what it would have held.
pub fn parse_page(body: Value, what: &str) -> Result<Page> {
    let Value::Object(mut m) = fold_keys(body) else {
        return Err(Error::new(
            ErrorCode::MalformedResponse,
            format!("{what}: the response is not a SCIM ListResponse object"),
        ));
    };
    let resources = match m.remove("resources") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::new(
                ErrorCode::MalformedResponse,
                format!("{what}: 'Resources' is not a list"),
            ))
        }
    };
    let total_results = m.get("totalresults").and_then(|t| {
        t.as_u64()
            .or_else(|| t.as_str().and_then(|s| s.trim().parse().ok()))
    });
    let next_cursor = m
        .get("nextcursor")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    Ok(Page {
        resources,
        total_results,
        next_cursor,
    })
}

/// A listed resource with where it was found, for warnings.
pub struct Listed {
    pub page: u64,
    pub index: usize,
    pub value: Value,
}

impl Listed {
    fn place(&self, endpoint: &str) -> String {
        format!("{endpoint} page {} item {}", self.page, self.index + 1)
    }
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// `active` as a boolean, also when a server sends `"true"`/`"false"`.
fn bool_at(v: &Value, key: &str) -> Option<bool> {
    match v.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn time_at(v: &Value, path: &[&str]) -> Option<chrono::DateTime<chrono::Utc>> {
    str_at(v, path)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// The NHI kind a SCIM `userType` names, if it names a machine.
pub fn machine_kind(user_type: &str) -> Option<(IdentityKind, Option<AgentClass>)> {
    let t = user_type
        .trim()
        .to_ascii_lowercase()
        .replace([' ', '-', '_'], "");
    match t.as_str() {
        "agent" | "aiagent" => Some((IdentityKind::AiAgent, None)),
        "digitalworker" => Some((IdentityKind::AiAgent, Some(AgentClass::DigitalWorker))),
        "service" | "serviceaccount" | "machine" | "system" => {
            Some((IdentityKind::ServiceAccount, None))
        }
        "bot" => Some((IdentityKind::Bot, None)),
        "application" | "app" | "oauthapp" => Some((IdentityKind::OauthApp, None)),
        "workload" => Some((IdentityKind::Workload, None)),
        "api" | "apikey" => Some((IdentityKind::ApiKey, None)),
        _ => None,
    }
}

fn primary_email(u: &Value) -> String {
    let emails = u.get("emails").and_then(Value::as_array);
    let pick = emails.and_then(|es| {
        es.iter()
            .find(|e| bool_at(e, "primary") == Some(true))
            .or_else(|| es.first())
            .and_then(|e| str_at(e, &["value"]))
    });
    pick.unwrap_or_default().to_string()
}

fn display_name(u: &Value) -> String {
    str_at(u, &["displayname"])
        .or_else(|| str_at(u, &["name", "formatted"]))
        .map(str::to_string)
        .or_else(|| {
            let given = str_at(u, &["name", "givenname"]).unwrap_or_default();
            let family = str_at(u, &["name", "familyname"]).unwrap_or_default();
            let full = format!("{given} {family}").trim().to_string();
            (!full.is_empty()).then_some(full)
        })
        .or_else(|| str_at(u, &["username"]).map(str::to_string))
        .unwrap_or_default()
}

/// Where the next page starts.
enum Next {
    Index(u64),
    Cursor(String),
}

impl ScimSource {
    async fn list(
        &self,
        ctx: &SyncContext,
        f: &mut Fetched,
        endpoint: &str,
        phase: &str,
    ) -> Result<Vec<Listed>> {
        let base = ctx.setting("base_url")?;
        let base = base.trim_end_matches('/');
        let page_size = ctx
            .source
            .settings
            .get("page_size")
            .and_then(Value::as_u64)
            .unwrap_or(100)
            .clamp(1, 1000);
        let paging = Paging::parse(
            ctx.source
                .settings
                .get("pagination")
                .and_then(Value::as_str),
        )?;
        let auth = [
            ("authorization", format!("Bearer {}", ctx.secret()?)),
            ("accept", "application/scim+json".into()),
        ];
        let mut out = Vec::new();
        let mut next = match paging {
            Paging::Cursor => Next::Cursor(String::new()),
            Paging::Auto | Paging::Index => Next::Index(1),
        };
        let mut pages = 0u64;
        let mut reported: Option<u64> = None;
        let mut cursors = std::collections::HashSet::new();
        loop {
            ctx.http.cancel().check()?;
            let url = match &next {
                Next::Index(start) => {
                    format!("{base}/{endpoint}?startIndex={start}&count={page_size}")
                }
                Next::Cursor(c) => {
                    let c: String = url::form_urlencoded::byte_serialize(c.as_bytes()).collect();
                    format!("{base}/{endpoint}?cursor={c}&count={page_size}")
                }
            };
            let resp = ctx.http.get(&url, &auth).await?;
            let what = format!("SCIM {endpoint} page {}", pages + 1);
            let page = parse_page(resp.json(&what)?, &what)?;
            pages += 1;
            let n = page.resources.len() as u64;
            if page.total_results.is_some() {
                reported = page.total_results;
            }
            out.extend(
                page.resources
                    .into_iter()
                    .enumerate()
                    .map(|(index, value)| Listed {
                        page: pages,
                        index,
                        value,
                    }),
            );
            ctx.report(phase, pages, out.len() as u64, reported);
            if pages > MAX_PAGES {
                return Err(Error::new(
                    ErrorCode::MalformedResponse,
                    format!("SCIM {endpoint}: paging does not end"),
                ));
            }
            next = match (next, page.next_cursor) {
                // Cursor paging (RFC 9865): follow nextCursor until it is absent.
                (Next::Cursor(_), Some(c)) | (Next::Index(_), Some(c))
                    if paging != Paging::Index =>
                {
                    if !cursors.insert(c.clone()) {
                        return Err(Error::new(
                            ErrorCode::MalformedResponse,
                            format!("SCIM {endpoint}: nextCursor repeats an earlier page"),
                        ));
                    }
                    Next::Cursor(c)
                }
                (Next::Cursor(_), _) => break,
                (Next::Index(start), _) => {
                    let done = match page.total_results {
                        Some(total) => n == 0 || start - 1 + n >= total,
                        // totalResults is required, but a page shorter than
                        // asked is the last one either way.
                        None => n < page_size,
                    };
                    if done {
                        break;
                    }
                    Next::Index(start + n)
                }
            };
        }
        if let Some(total) = reported {
            let got = out.len() as u64;
            if total > 0 && got == 0 {
                f.warn(format!(
                    "SCIM {endpoint}: the server reported {total} result(s) (totalResults) but returned none"
                ));
            } else if got < total {
                f.warn(format!(
                    "SCIM {endpoint}: the server reported {total} result(s) (totalResults) but returned {got}"
                ));
            }
        }
        Ok(out)
    }
}

impl Source for ScimSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let mut f = Fetched::new(FetchMode::Full);
        let users = self.list(ctx, &mut f, "Users", "people").await?;
        let groups = self.list(ctx, &mut f, "Groups", "groups").await?;
        map(&mut f, &users, &groups);
        Ok(f)
    }
}

/// Maps listed Users and Groups (keys folded). A resource that is not an
/// object or has no `id` is skipped with a warning; so is a repeated id.
pub fn map(f: &mut Fetched, users: &[Listed], groups: &[Listed]) {
    let mut nhi_ids = std::collections::HashSet::new();
    let mut seen = std::collections::HashSet::new();
    for l in users {
        let u = &l.value;
        if !u.is_object() {
            f.warn(format!(
                "{}: not a SCIM User object; skipped",
                l.place("Users")
            ));
            continue;
        }
        let Some(id) = str_at(u, &["id"]) else {
            let name = str_at(u, &["username"]).unwrap_or("unnamed");
            f.warn(format!(
                "{} ('{name}'): a User without an id; skipped",
                l.place("Users")
            ));
            continue;
        };
        if !seen.insert(id.to_string()) {
            f.warn(format!(
                "{}: User id '{id}' listed twice; the first kept",
                l.place("Users")
            ));
            continue;
        }
        let active = bool_at(u, "active").unwrap_or(true);
        let manager = str_at(u, &[ENTERPRISE, "manager", "value"])
            .map(|m| PersonKey::ExternalId(m.to_string()));
        let department = str_at(u, &[ENTERPRISE, "department"])
            .unwrap_or_default()
            .to_string();
        match str_at(u, &["usertype"]).and_then(machine_kind) {
            Some((kind, class)) => {
                nhi_ids.insert(id.to_string());
                f.identities.push(IdentityRecord {
                    external_id: id.to_string(),
                    name: str_at(u, &["username"]).map_or_else(|| display_name(u), str::to_string),
                    kind,
                    agent_class: class,
                    status: if active {
                        IdentityStatus::Active
                    } else {
                        IdentityStatus::Disabled
                    },
                    description: str_at(u, &["title"])
                        .or_else(|| str_at(u, &["displayname"]))
                        .unwrap_or_default()
                        .to_string(),
                    owner: manager,
                    builder: None,
                    team: department,
                    environment: String::new(),
                    registration: None,
                    created_at: time_at(u, &["meta", "created"]),
                    last_used_at: None,
                });
            }
            None => f.people.push(PersonRecord {
                external_id: id.to_string(),
                display_name: display_name(u),
                email: primary_email(u),
                department,
                title: str_at(u, &["title"]).unwrap_or_default().to_string(),
                manager,
                status: if active {
                    PersonStatus::Active
                } else {
                    PersonStatus::Suspended
                },
                left_at: None,
            }),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for l in groups {
        let g = &l.value;
        let Some(gid) = str_at(g, &["id"]) else {
            let name = str_at(g, &["displayname"]).unwrap_or("unnamed");
            f.warn(format!(
                "{} ('{name}'): a Group without an id; skipped",
                l.place("Groups")
            ));
            continue;
        };
        if !seen.insert(gid.to_string()) {
            f.warn(format!(
                "{}: Group id '{gid}' listed twice; the first kept",
                l.place("Groups")
            ));
            continue;
        }
        let name = str_at(g, &["displayname"]).unwrap_or(gid).to_string();
        let admin = name.to_ascii_lowercase().contains("admin");
        f.resources.push(ResourceRecord {
            external_id: gid.to_string(),
            name: name.clone(),
            kind: "group".into(),
            sensitivity: if admin {
                Sensitivity::High
            } else {
                Sensitivity::Medium
            },
            environment: String::new(),
        });
        let mut members = std::collections::HashSet::new();
        for m in g
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(member) = str_at(m, &["value"]) {
                if nhi_ids.contains(member) && members.insert(member) {
                    f.grants.push(GrantRecord {
                        identity: member.to_string(),
                        resource: gid.to_string(),
                        permission: "member".into(),
                        privilege: if admin {
                            Privilege::Admin
                        } else {
                            Privilege::Read
                        },
                        high_consequence: admin,
                        last_used_at: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listed(values: Vec<Value>) -> Vec<Listed> {
        values
            .into_iter()
            .enumerate()
            .map(|(index, value)| Listed {
                page: 1,
                index,
                value: fold_keys(value),
            })
            .collect()
    }

    #[test]
    fn attribute_names_are_case_insensitive() {
        let page = parse_page(
            json!({"TOTALRESULTS": 1, "resources": [{"ID": "u1", "UserName": "svc-a", "USERTYPE": "Service",
                   "Active": false,
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"Manager": {"Value": "boss"}}}],
                   "nextCursor": "c2"}),
            "t",
        )
        .unwrap();
        assert_eq!(page.total_results, Some(1));
        assert_eq!(page.next_cursor.as_deref(), Some("c2"));
        let mut f = Fetched::new(FetchMode::Full);
        let users: Vec<Listed> = page
            .resources
            .into_iter()
            .enumerate()
            .map(|(index, value)| Listed {
                page: 1,
                index,
                value,
            })
            .collect();
        map(&mut f, &users, &[]);
        assert_eq!(f.identities.len(), 1);
        let i = &f.identities[0];
        assert_eq!((i.external_id.as_str(), i.name.as_str()), ("u1", "svc-a"));
        assert_eq!(i.status, IdentityStatus::Disabled);
        assert_eq!(i.owner, Some(PersonKey::ExternalId("boss".into())));
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn a_broken_page_fails_but_a_bad_user_is_skipped_and_named() {
        assert!(parse_page(json!([1, 2]), "t").is_err());
        assert!(parse_page(json!({"Resources": {"id": "x"}}), "t").is_err());
        let mut f = Fetched::new(FetchMode::Full);
        let users = listed(vec![
            json!({"id": "u1", "userName": "alice"}),
            json!({"userName": "ghost"}),
            json!("not an object"),
            json!({"id": "u1", "userName": "alice-again"}),
        ]);
        map(
            &mut f,
            &users,
            &listed(vec![json!({"displayName": "no-id-group"})]),
        );
        assert_eq!(f.people.len(), 1);
        assert_eq!(f.warnings.len(), 4, "{:?}", f.warnings);
        assert!(f.warnings[0].contains("Users page 1 item 2") && f.warnings[0].contains("ghost"));
        assert!(f.warnings[1].contains("item 3"));
        assert!(f.warnings[2].contains("listed twice"));
        assert!(f.warnings[3].contains("no-id-group"));
    }

    #[test]
    fn pagination_setting() {
        assert_eq!(Paging::parse(None).unwrap(), Paging::Auto);
        assert_eq!(Paging::parse(Some("Cursor")).unwrap(), Paging::Cursor);
        assert!(Paging::parse(Some("pages")).is_err());
    }
}
