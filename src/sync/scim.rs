//! SCIM 2.0 (RFC 7643/7644): Users with the enterprise extension (manager,
//! department), `active`, and Groups.
//!
//! Mapping: a User whose `userType` names a machine (service, bot, agent,
//! application, machine, workload, api) is a non-human identity; its
//! enterprise `manager` is its owner. Every other User is a person. Groups
//! are resources; an NHI's group membership is a grant (`member`, admin when
//! the group name says so).
//!
//! Settings: `base_url` (e.g. `https://idp.example/scim/v2`), optional
//! `page_size` (default 100). Secret: the bearer token.
//! Always a full fetch: SCIM has no deletion feed, and group membership
//! changes do not touch the members' `meta.lastModified`.

use serde::Deserialize;
use serde_json::Value;

use super::records::*;
use super::{Source, SyncContext};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AgentClass, IdentityKind, IdentityStatus, PersonStatus, Privilege, Sensitivity,
};

pub struct ScimSource;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListResponse {
    #[serde(default)]
    total_results: Option<u64>,
    #[serde(default, rename = "Resources")]
    resources: Vec<Value>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::trim).filter(|s| !s.is_empty())
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
            .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| es.first())
            .and_then(|e| str_at(e, &["value"]))
    });
    pick.unwrap_or_default().to_string()
}

fn display_name(u: &Value) -> String {
    str_at(u, &["displayName"])
        .or_else(|| str_at(u, &["name", "formatted"]))
        .map(str::to_string)
        .or_else(|| {
            let given = str_at(u, &["name", "givenName"]).unwrap_or_default();
            let family = str_at(u, &["name", "familyName"]).unwrap_or_default();
            let full = format!("{given} {family}").trim().to_string();
            (!full.is_empty()).then_some(full)
        })
        .or_else(|| str_at(u, &["userName"]).map(str::to_string))
        .unwrap_or_default()
}

impl ScimSource {
    async fn list(&self, ctx: &SyncContext, endpoint: &str, phase: &str) -> Result<Vec<Value>> {
        let base = ctx.setting("base_url")?;
        let base = base.trim_end_matches('/');
        let page_size = ctx
            .source
            .settings
            .get("page_size")
            .and_then(Value::as_u64)
            .unwrap_or(100)
            .clamp(1, 1000);
        let auth = [
            ("authorization", format!("Bearer {}", ctx.secret()?)),
            ("accept", "application/scim+json".into()),
        ];
        let mut out = Vec::new();
        let mut start = 1u64;
        let mut pages = 0u64;
        loop {
            ctx.http.cancel().check()?;
            let url = format!("{base}/{endpoint}?startIndex={start}&count={page_size}");
            let resp = ctx.http.get(&url, &auth).await?;
            let page: ListResponse = resp.json(&format!("SCIM {endpoint} page {}", pages + 1))?;
            pages += 1;
            let n = page.resources.len() as u64;
            out.extend(page.resources);
            ctx.report(phase, pages, out.len() as u64, page.total_results);
            let total = page.total_results.unwrap_or(0);
            if n == 0 || start - 1 + n >= total {
                break;
            }
            start += n;
            if pages > 1_000_000 {
                return Err(Error::new(
                    ErrorCode::MalformedResponse,
                    format!("SCIM {endpoint}: paging does not end"),
                ));
            }
        }
        Ok(out)
    }
}

impl Source for ScimSource {
    async fn fetch(&self, ctx: &SyncContext) -> Result<Fetched> {
        let users = self.list(ctx, "Users", "people").await?;
        let groups = self.list(ctx, "Groups", "groups").await?;
        let mut f = Fetched::new(FetchMode::Full);
        let mut nhi_ids = std::collections::HashSet::new();
        for u in &users {
            let Some(id) = str_at(u, &["id"]) else {
                return Err(Error::new(
                    ErrorCode::MalformedResponse,
                    "a SCIM User has no id",
                ));
            };
            let active = u.get("active").and_then(Value::as_bool).unwrap_or(true);
            let manager = str_at(u, &[ENTERPRISE, "manager", "value"])
                .map(|m| PersonKey::ExternalId(m.to_string()));
            let department = str_at(u, &[ENTERPRISE, "department"])
                .unwrap_or_default()
                .to_string();
            match str_at(u, &["userType"]).and_then(machine_kind) {
                Some((kind, class)) => {
                    nhi_ids.insert(id.to_string());
                    f.identities.push(IdentityRecord {
                        external_id: id.to_string(),
                        name: str_at(u, &["userName"])
                            .map_or_else(|| display_name(u), str::to_string),
                        kind,
                        agent_class: class,
                        status: if active {
                            IdentityStatus::Active
                        } else {
                            IdentityStatus::Disabled
                        },
                        description: str_at(u, &["title"])
                            .or_else(|| str_at(u, &["displayName"]))
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
        for g in &groups {
            let Some(gid) = str_at(g, &["id"]) else {
                return Err(Error::new(
                    ErrorCode::MalformedResponse,
                    "a SCIM Group has no id",
                ));
            };
            let name = str_at(g, &["displayName"]).unwrap_or(gid).to_string();
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
            for m in g
                .get("members")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(member) = str_at(m, &["value"]) {
                    if nhi_ids.contains(member) {
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
        Ok(f)
    }
}
