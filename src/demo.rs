//! A deterministic generator of a realistic fictional organisation.
//!
//! The same `(size, seed, now)` always gives the same organisation, so tests
//! can assert on it and benchmarks compare like with like. Sizes:
//! S (about 1k NHIs), M (10k), L (100k NHIs, about 1M grants).

use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};
use crate::model::{
    AgentClass, Credential, CredentialId, CredentialKind, Delegation, DelegationKind, Grant,
    Identity, IdentityId, IdentityKind, IdentityStatus, OrgSnapshot, Person, PersonId,
    PersonStatus, Privilege, Resource, ResourceId, Sensitivity, Source, SourceId,
};

/// Size of a generated organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoSize {
    S,
    M,
    L,
    /// A million NHIs and ten million grants: the scale at which a desktop
    /// cache stops being enough (see the README's XL figures).
    Xl,
}

impl DemoSize {
    pub fn parse(s: &str) -> Result<DemoSize> {
        match s.trim().to_ascii_lowercase().as_str() {
            "s" | "small" => Ok(DemoSize::S),
            "m" | "medium" => Ok(DemoSize::M),
            "l" | "large" => Ok(DemoSize::L),
            "xl" | "x-large" => Ok(DemoSize::Xl),
            other => Err(Error::invalid(format!(
                "unknown demo size '{other}'; expected s, m, l or xl"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DemoSize::S => "s",
            DemoSize::M => "m",
            DemoSize::L => "l",
            DemoSize::Xl => "xl",
        }
    }

    /// Number of non-human identities.
    pub fn identities(self) -> usize {
        match self {
            DemoSize::S => 1_000,
            DemoSize::M => 10_000,
            DemoSize::L => 100_000,
            DemoSize::Xl => 1_000_000,
        }
    }

    fn people(self) -> usize {
        match self {
            DemoSize::S => 400,
            DemoSize::M => 3_000,
            DemoSize::L => 25_000,
            DemoSize::Xl => 200_000,
        }
    }

    fn resources(self) -> usize {
        self.identities() / 4
    }
}

/// The seed the app and the docs use.
pub const DEFAULT_SEED: u64 = 0x00C0_FFEE;

/// SplitMix64: small, fast, and stable across releases (unlike `rand`'s std RNG).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % (n.max(1) as u64)) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / ((1u64 << 53) as f64) < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn days_ago(&mut self, now: DateTime<Utc>, min: i64, max: i64) -> DateTime<Utc> {
        let span = (max - min).max(1) as usize;
        now - Duration::days(min + self.below(span) as i64)
            - Duration::seconds(self.below(86_400) as i64)
    }
}

const FIRST: &[&str] = &[
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi",
    "Liam", "Maya", "Noah", "Olga", "Priya", "Quinn", "Rosa", "Sami", "Tara", "Umar", "Vera",
    "Wen", "Ximena", "Yusuf", "Zoe", "Aiko", "Bruno", "Carmen", "Diego", "Esther", "Felix",
    "Greta", "Hamid", "Ivy", "Jakub", "Lena", "Marco", "Nadia", "Oscar",
];
const LAST: &[&str] = &[
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Kowalski",
    "Haddad",
    "Fischer",
    "Nguyen",
    "Silva",
    "Brennan",
    "Novak",
    "Rossi",
    "Sato",
    "Jensen",
    "Mensah",
    "Petrov",
    "Garcia",
    "Khan",
    "Dubois",
    "Larsen",
    "Costa",
    "Weber",
    "Ibrahim",
    "Müller",
    "O'Neill",
    "Zhang",
    "Patel",
    "Schmidt",
    "Andersson",
    "Kim",
];
const DEPARTMENTS: &[(&str, &str)] = &[
    ("Engineering", "eng"),
    ("Data", "data"),
    ("Finance", "fin"),
    ("Sales", "sales"),
    ("Support", "support"),
    ("Security", "sec"),
    ("IT", "it"),
    ("Marketing", "mkt"),
    ("People", "hr"),
    ("Legal", "legal"),
];
const TITLES: &[&str] = &[
    "Engineer",
    "Senior Engineer",
    "Staff Engineer",
    "Analyst",
    "Manager",
    "Director",
    "Specialist",
    "Data Scientist",
    "Platform Engineer",
    "ML Engineer",
];

/// (function, purpose) per kind of identity.
const AGENT_FUNCS: &[(&str, &str)] = &[
    (
        "invoice-triage",
        "Triages incoming supplier invoices and drafts payment approvals",
    ),
    (
        "ticket-summariser",
        "Summarises support tickets and suggests replies",
    ),
    (
        "code-reviewer",
        "Reviews pull requests and comments on risky changes",
    ),
    (
        "sales-research",
        "Researches prospects and drafts outreach emails",
    ),
    (
        "contract-analyst",
        "Extracts obligations and renewal dates from contracts",
    ),
    (
        "incident-responder",
        "Correlates alerts and opens incidents with a first diagnosis",
    ),
    (
        "hr-onboarding",
        "Answers new-joiner questions and files onboarding requests",
    ),
    (
        "expense-auditor",
        "Checks expense claims against policy and flags outliers",
    ),
    (
        "campaign-writer",
        "Drafts marketing campaign copy and schedules posts",
    ),
    (
        "data-pipeline-fixer",
        "Diagnoses failed data pipeline runs and retries them",
    ),
    (
        "customer-chat",
        "Answers customer questions in the web chat",
    ),
    (
        "meeting-notes",
        "Joins meetings, writes notes and files action items",
    ),
    (
        "access-requester",
        "Files and routes access requests on behalf of employees",
    ),
    ("refund-processor", "Issues refunds for eligible orders"),
];
const SERVICE_FUNCS: &[(&str, &str)] = &[
    (
        "etl",
        "Nightly ETL from the operational databases to the warehouse",
    ),
    ("backup", "Backs up databases and file shares"),
    ("ci-deploy", "Deploys builds from CI to the clusters"),
    ("report-mailer", "Emails scheduled reports"),
    ("sync", "Synchronises records between the CRM and billing"),
    ("monitoring", "Collects metrics and health checks"),
    ("scanner", "Scans repositories and buckets for secrets"),
    ("batch", "Runs month-end batch jobs"),
];
const APP_FUNCS: &[(&str, &str)] = &[
    (
        "slack-integration",
        "Posts notifications into chat channels",
    ),
    (
        "crm-connector",
        "Reads and writes CRM records for the sales team",
    ),
    ("calendar-assistant", "Reads calendars to schedule meetings"),
    ("doc-signer", "Sends contracts for e-signature"),
    ("survey-tool", "Collects survey responses"),
    ("analytics-export", "Exports product analytics"),
];

/// Resource kinds: (kind, name stem, sensitivity weights low/med/high/critical, data store?).
const RESOURCE_KINDS: &[(&str, &str, [u8; 4], ResourceClass)] = &[
    (
        "s3_bucket",
        "bucket",
        [3, 4, 2, 1],
        ResourceClass::DataStore,
    ),
    ("database", "db", [1, 3, 4, 2], ResourceClass::DataStore),
    (
        "data_warehouse",
        "warehouse",
        [0, 2, 4, 2],
        ResourceClass::DataStore,
    ),
    ("repository", "repo", [3, 4, 2, 1], ResourceClass::Code),
    ("mailbox", "mailbox", [1, 3, 3, 1], ResourceClass::Messaging),
    (
        "messaging_channel",
        "channel",
        [4, 3, 1, 0],
        ResourceClass::Messaging,
    ),
    (
        "payments_api",
        "payments",
        [0, 0, 2, 3],
        ResourceClass::Payments,
    ),
    ("crm", "crm", [0, 3, 4, 1], ResourceClass::DataStore),
    ("secrets_vault", "vault", [0, 0, 2, 4], ResourceClass::Iam),
    ("iam_admin", "iam", [0, 0, 1, 4], ResourceClass::Iam),
    (
        "kubernetes_cluster",
        "k8s",
        [0, 2, 3, 2],
        ResourceClass::Compute,
    ),
    (
        "ticketing",
        "tickets",
        [3, 4, 1, 0],
        ResourceClass::DataStore,
    ),
    (
        "file_share",
        "share",
        [2, 4, 2, 1],
        ResourceClass::DataStore,
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResourceClass {
    DataStore,
    Code,
    Messaging,
    Payments,
    Iam,
    Compute,
}

/// Permissions on a class of resource: (permission, privilege, high consequence).
/// Whether the demo's identity number `i` is one of the well-kept ones
/// (about four in five), by a fixed hash rather than the generator.
fn is_governed(i: usize) -> bool {
    (i as u64).wrapping_mul(2_654_435_761) % 100 < 80
}

fn permissions(class: ResourceClass) -> &'static [(&'static str, Privilege, bool)] {
    match class {
        ResourceClass::DataStore => &[
            ("read", Privilege::Read, false),
            ("list", Privilege::Read, false),
            ("write", Privilege::Write, true),
            ("delete", Privilege::Write, true),
            ("admin", Privilege::Admin, true),
        ],
        ResourceClass::Code => &[
            ("pull", Privilege::Read, false),
            ("push", Privilege::Write, false),
            ("merge", Privilege::Write, true),
            ("admin", Privilege::Admin, true),
        ],
        ResourceClass::Messaging => &[
            ("read", Privilege::Read, false),
            ("send", Privilege::Write, true),
            ("send_as", Privilege::Admin, true),
        ],
        ResourceClass::Payments => &[
            ("read", Privilege::Read, false),
            ("refund", Privilege::Write, true),
            ("transfer", Privilege::Write, true),
            ("admin", Privilege::Admin, true),
        ],
        ResourceClass::Iam => &[
            ("read", Privilege::Read, false),
            ("pass_role", Privilege::Admin, true),
            ("create_credentials", Privilege::Admin, true),
            ("admin", Privilege::Admin, true),
        ],
        ResourceClass::Compute => &[
            ("get", Privilege::Read, false),
            ("exec", Privilege::Write, true),
            ("deploy", Privilege::Write, true),
            ("cluster_admin", Privilege::Admin, true),
        ],
    }
}

const SOURCES: &[(&str, &str)] = &[
    ("entra", "Entra ID (contoso.example)"),
    ("aws", "AWS prod 123456789012"),
    ("github", "GitHub contoso"),
    ("okta", "Okta contoso"),
];

const ENVIRONMENTS: &[&str] = &[
    "production",
    "production",
    "production",
    "staging",
    "development",
];

/// Generates the demo organisation of `size` from `seed`, with dates relative to `now`.
pub fn generate(size: DemoSize, seed: u64, now: DateTime<Utc>) -> OrgSnapshot {
    let mut rng = Rng::new(seed ^ (size.identities() as u64).rotate_left(17));
    let mut org = OrgSnapshot::default();

    for (i, (kind, name)) in SOURCES.iter().enumerate() {
        org.sources.push(Source {
            id: SourceId(i as i64 + 1),
            kind: (*kind).into(),
            name: (*name).into(),
        });
    }
    let src = |kind: &str| -> SourceId {
        SourceId(
            SOURCES
                .iter()
                .position(|(k, _)| *k == kind)
                .map_or(1, |p| p as i64 + 1),
        )
    };

    // People: a management tree, about 6% departed and 1% suspended.
    let n_people = size.people();
    org.people.reserve(n_people);
    for i in 0..n_people {
        let first = rng.pick(FIRST);
        let last = rng.pick(LAST);
        let (dept, _) = *rng.pick(DEPARTMENTS);
        let manager = if i == 0 {
            None
        } else {
            Some(PersonId(1 + rng.below(i.div_ceil(6).max(1)) as i64))
        };
        let roll = rng.below(100);
        let (status, left_at) = if i > 0 && roll < 6 {
            (PersonStatus::Departed, Some(rng.days_ago(now, 1, 400)))
        } else if i > 0 && roll < 7 {
            (PersonStatus::Suspended, None)
        } else {
            (PersonStatus::Active, None)
        };
        let login = format!(
            "{}.{}{}",
            first.to_lowercase(),
            last.to_lowercase().replace('\'', ""),
            i + 1
        );
        org.people.push(Person {
            id: PersonId(i as i64 + 1),
            source: src("entra"),
            external_id: format!("u-{:06}", i + 1),
            display_name: format!("{first} {last}"),
            email: format!("{login}@contoso.example"),
            department: dept.into(),
            title: (*rng.pick(TITLES)).into(),
            manager,
            status,
            left_at,
        });
    }

    // Resources.
    let n_resources = size.resources();
    org.resources.reserve(n_resources);
    let mut resource_class = Vec::with_capacity(n_resources);
    for i in 0..n_resources {
        let k = rng.below(RESOURCE_KINDS.len());
        let (kind, stem, weights, class) = RESOURCE_KINDS[k];
        let sensitivity = weighted_sensitivity(&mut rng, weights);
        let env = *rng.pick(ENVIRONMENTS);
        let (_, team) = *rng.pick(DEPARTMENTS);
        let source = match class {
            ResourceClass::Code => src("github"),
            ResourceClass::Messaging => src("entra"),
            _ => src("aws"),
        };
        org.resources.push(Resource {
            id: ResourceId(i as i64 + 1),
            source,
            external_id: format!("res-{:06}", i + 1),
            name: format!("{team}-{stem}-{}-{:04}", &env[..4], i + 1),
            kind: kind.into(),
            sensitivity,
            environment: env.into(),
            // Four in five resources have a data owner; chosen without the
            // generator so the rest of the organisation stays as it was.
            owner: (i % 5 != 0 && !org.people.is_empty())
                .then(|| PersonId(1 + ((i * 7919) % org.people.len()) as i64)),
        });
        resource_class.push(class);
    }

    // Resources by environment, for identities that keep to their own.
    let mut by_env: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (r, res) in org.resources.iter().enumerate() {
        by_env.entry(res.environment.as_str()).or_default().push(r);
    }
    let by_env: std::collections::HashMap<String, Vec<usize>> = by_env
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();

    // Identities with their credentials and grants.
    let n_ids = size.identities();
    org.identities.reserve(n_ids);
    org.grants.reserve(n_ids * 10);
    org.credentials.reserve(n_ids * 2);
    for i in 0..n_ids {
        let id = IdentityId(i as i64 + 1);
        let kind = match rng.below(100) {
            0..=29 => IdentityKind::AiAgent,
            30..=59 => IdentityKind::ServiceAccount,
            60..=71 => IdentityKind::OauthApp,
            72..=81 => IdentityKind::ApiKey,
            82..=94 => IdentityKind::Workload,
            _ => IdentityKind::Bot,
        };
        let (dept, team) = *rng.pick(DEPARTMENTS);
        let (func, purpose, source) = match kind {
            IdentityKind::AiAgent => {
                let (f, p) = *rng.pick(AGENT_FUNCS);
                (
                    f,
                    p,
                    if rng.chance(0.7) {
                        src("entra")
                    } else {
                        src("okta")
                    },
                )
            }
            IdentityKind::ServiceAccount => {
                let (f, p) = *rng.pick(SERVICE_FUNCS);
                (
                    f,
                    p,
                    if rng.chance(0.5) {
                        src("entra")
                    } else {
                        src("aws")
                    },
                )
            }
            IdentityKind::OauthApp => {
                let (f, p) = *rng.pick(APP_FUNCS);
                (
                    f,
                    p,
                    if rng.chance(0.6) {
                        src("okta")
                    } else {
                        src("entra")
                    },
                )
            }
            IdentityKind::ApiKey => {
                let (f, p) = *rng.pick(SERVICE_FUNCS);
                (f, p, src("okta"))
            }
            IdentityKind::Workload => {
                let (f, p) = *rng.pick(SERVICE_FUNCS);
                (f, p, src("aws"))
            }
            IdentityKind::Bot => {
                let (f, p) = *rng.pick(APP_FUNCS);
                (f, p, src("github"))
            }
        };
        let suffix = match kind {
            IdentityKind::AiAgent => "agent",
            IdentityKind::ServiceAccount => "svc",
            IdentityKind::OauthApp => "app",
            IdentityKind::ApiKey => "key",
            IdentityKind::Workload => "role",
            IdentityKind::Bot => "bot",
        };
        let agent_class = (kind == IdentityKind::AiAgent).then(|| match rng.below(10) {
            0..=2 => AgentClass::Personal,
            3 => AgentClass::ConsumerAssistant,
            4..=6 => AgentClass::WorkforceAssistant,
            _ => AgentClass::DigitalWorker,
        });
        // A partly governed organisation: most identities are kept well
        // (their own environment, least privilege, secrets that expire and
        // rotate, used access, an owner, registered, reviewed); the rest
        // carry the problems. Decided without the generator, so every other
        // draw (names, kinds, counts) stays as it was.
        let governed = is_governed(i);
        let owner = (!rng.chance(0.04)).then(|| PersonId(1 + rng.below(n_people) as i64));
        let builder = match owner {
            Some(o) if rng.chance(0.7) => Some(o),
            _ => Some(PersonId(1 + rng.below(n_people) as i64)),
        };
        let owner = if governed { owner.or(builder) } else { owner };
        let status = match rng.below(100) {
            0..=2 => IdentityStatus::Disabled,
            3 => IdentityStatus::Deleted,
            _ => IdentityStatus::Active,
        };
        let registered = match kind {
            IdentityKind::AiAgent => rng.chance(0.65),
            _ => rng.chance(0.85),
        } || governed;
        let env = *rng.pick(ENVIRONMENTS);
        let created_at = rng.days_ago(now, 5, 1800);
        let last_used_at = match rng.below(10) {
            0 => None,
            1 => Some(rng.days_ago(now, 120, 700)),
            _ => Some(rng.days_ago(now, 0, 30)),
        };
        let last_reviewed_at = rng.chance(0.5).then(|| rng.days_ago(now, 1, 540));
        let last_reviewed_at = if governed {
            Some(now - Duration::days((i % 150) as i64 + 1))
        } else {
            last_reviewed_at
        };
        let intended = if registered && kind == IdentityKind::AiAgent {
            format!(
                "Reads {dept} data it needs to {}; never sends externally or changes access.",
                purpose.to_lowercase()
            )
        } else {
            String::new()
        };
        org.identities.push(Identity {
            id,
            source,
            external_id: format!("{suffix}-{:06}", i + 1),
            name: format!("{team}-{func}-{suffix}-{:04}", i + 1),
            kind,
            agent_class,
            status,
            purpose: purpose.into(),
            builder,
            owner,
            team: dept.into(),
            environment: env.into(),
            registered,
            intended_blast_radius: intended,
            created_at,
            last_used_at,
            last_reviewed_at,
        });

        // Credentials.
        let n_creds = match kind {
            IdentityKind::Workload => usize::from(rng.chance(0.3)),
            IdentityKind::ApiKey => 1,
            _ => rng.below(3) + usize::from(rng.chance(0.5)),
        };
        for c in 0..n_creds {
            let ckind = match kind {
                IdentityKind::AiAgent => *rng.pick(&[
                    CredentialKind::ClientSecret,
                    CredentialKind::ApiToken,
                    CredentialKind::FederatedCredential,
                    CredentialKind::Certificate,
                ]),
                IdentityKind::ServiceAccount => {
                    *rng.pick(&[CredentialKind::Password, CredentialKind::AccessKey])
                }
                IdentityKind::OauthApp => {
                    *rng.pick(&[CredentialKind::ClientSecret, CredentialKind::Certificate])
                }
                IdentityKind::ApiKey => CredentialKind::ApiToken,
                IdentityKind::Workload => CredentialKind::AccessKey,
                IdentityKind::Bot => {
                    *rng.pick(&[CredentialKind::PersonalAccessToken, CredentialKind::SshKey])
                }
            };
            let created = rng.days_ago(now, 1, 1500).max(created_at);
            let expires_at = match ckind {
                CredentialKind::FederatedCredential => None,
                _ if rng.chance(0.4) => None,
                _ => Some(created + Duration::days(*rng.pick(&[90, 180, 365, 730]))),
            };
            let last_rotated_at = rng
                .chance(0.3)
                .then(|| rng.days_ago(now, 0, 400).max(created));
            let last_used_at = match rng.below(8) {
                0 => None,
                1 | 2 => Some(rng.days_ago(now, 91, 600).max(created)),
                _ => Some(rng.days_ago(now, 0, 30).max(created)),
            };
            // Kept well: rotated within the year, expiring ahead, in use.
            let (created, expires_at, last_rotated_at, last_used_at) = if governed {
                let rotated = (now - Duration::days(((i + c * 37) % 200) as i64 + 1)).max(created);
                let expires = (ckind != CredentialKind::FederatedCredential)
                    .then(|| rotated + Duration::days(365));
                (
                    created,
                    expires,
                    Some(rotated),
                    Some(now - Duration::days(((i + c) % 20) as i64)),
                )
            } else {
                (created, expires_at, last_rotated_at, last_used_at)
            };
            let cid = org.credentials.len() as i64 + 1;
            org.credentials.push(Credential {
                id: CredentialId(cid),
                identity: id,
                external_id: format!("cred-{cid:07}"),
                kind: ckind,
                display_name: format!("{}-{}", ckind.as_str().replace('_', "-"), c + 1),
                created_at: created,
                expires_at,
                last_rotated_at,
                last_used_at,
            });
        }

        // Grants: about ten per identity, distinct (resource, permission).
        let n_grants = 1 + rng.below(19);
        let mut seen: Vec<(usize, usize)> = Vec::with_capacity(n_grants);
        let own_env = by_env.get(env).filter(|v| !v.is_empty());
        let mut kept: Vec<(usize, usize)> = Vec::new();
        for _ in 0..n_grants {
            let r = rng.below(n_resources);
            let perms = permissions(resource_class[r]);
            // Skew towards read: most grants are the first (read) permissions.
            let p = if rng.chance(0.6) {
                0
            } else {
                rng.below(perms.len())
            };
            if seen.contains(&(r, p)) {
                continue;
            }
            seen.push((r, p));
            let last_used_at = match rng.below(4) {
                0 => None,
                1 => Some(rng.days_ago(now, 91, 500)),
                _ => Some(rng.days_ago(now, 0, 60)),
            };
            // Kept well: within its own environment, no admin on what is
            // critical (least privilege), used (the draws above are made
            // all the same, so the rest of the organisation is unchanged).
            let (r, p, last_used_at) = match own_env {
                Some(same) if governed => {
                    let r = same[r % same.len()];
                    let perms = permissions(resource_class[r]);
                    let p = p.min(perms.len() - 1);
                    let p = if perms[p].1 == Privilege::Admin
                        && org.resources[r].sensitivity == Sensitivity::Critical
                    {
                        0
                    } else {
                        p
                    };
                    if kept.contains(&(r, p)) {
                        continue;
                    }
                    kept.push((r, p));
                    (r, p, Some(now - Duration::days(((i + r) % 45) as i64)))
                }
                _ => (r, p, last_used_at),
            };
            let (perm, privilege, hc) = permissions(resource_class[r])[p];
            org.grants.push(Grant {
                identity: id,
                resource: ResourceId(r as i64 + 1),
                permission: perm.into(),
                privilege,
                high_consequence: hc,
                last_used_at,
            });
        }
    }

    // Delegations: chains several hops deep. Agents invoke other agents and
    // assume roles; roles assume earlier roles; apps act on behalf of others.
    // Edges mostly point to lower ids (a DAG with long paths), plus a few
    // cycles, as real trust policies have.
    let kinds: Vec<IdentityKind> = org.identities.iter().map(|i| i.kind).collect();
    let roles: Vec<usize> = (0..n_ids)
        .filter(|&i| kinds[i] == IdentityKind::Workload)
        .collect();
    let agents: Vec<usize> = (0..n_ids)
        .filter(|&i| kinds[i] == IdentityKind::AiAgent)
        .collect();
    for (i, &kind) in kinds.iter().enumerate() {
        let from = IdentityId(i as i64 + 1);
        let earlier = |pool: &[usize], rng: &mut Rng| -> Option<usize> {
            let upto = pool.partition_point(|&x| x < i);
            (upto > 0).then(|| pool[upto - 1 - rng.below(upto.min(50))])
        };
        match kind {
            IdentityKind::AiAgent => {
                if rng.chance(0.35) {
                    if let Some(t) = earlier(&agents, &mut rng) {
                        org.delegations.push(Delegation::new(
                            from,
                            IdentityId(t as i64 + 1),
                            DelegationKind::Invoke,
                        ));
                    }
                }
                if rng.chance(0.4) {
                    if let Some(t) = earlier(&roles, &mut rng) {
                        org.delegations.push(Delegation::new(
                            from,
                            IdentityId(t as i64 + 1),
                            DelegationKind::AssumeRole,
                        ));
                    }
                }
            }
            IdentityKind::Workload => {
                if rng.chance(0.5) {
                    if let Some(t) = earlier(&roles, &mut rng) {
                        org.delegations.push(Delegation::new(
                            from,
                            IdentityId(t as i64 + 1),
                            DelegationKind::AssumeRole,
                        ));
                    }
                }
            }
            IdentityKind::ServiceAccount | IdentityKind::Bot => {
                if rng.chance(0.15) {
                    if let Some(t) = earlier(&roles, &mut rng) {
                        org.delegations.push(Delegation::new(
                            from,
                            IdentityId(t as i64 + 1),
                            DelegationKind::AssumeRole,
                        ));
                    }
                }
            }
            IdentityKind::OauthApp => {
                if rng.chance(0.2) {
                    if let Some(t) = earlier(&agents, &mut rng) {
                        org.delegations.push(Delegation::new(
                            from,
                            IdentityId(t as i64 + 1),
                            DelegationKind::OnBehalfOf,
                        ));
                    }
                }
            }
            IdentityKind::ApiKey => {}
        }
    }
    // A few cycles: some early roles trust later ones back.
    for w in roles.windows(40).step_by(97) {
        if let (Some(&first), Some(&last)) = (w.first(), w.last()) {
            org.delegations.push(Delegation::new(
                IdentityId(first as i64 + 1),
                IdentityId(last as i64 + 1),
                DelegationKind::AssumeRole,
            ));
        }
    }
    org
}

fn weighted_sensitivity(rng: &mut Rng, w: [u8; 4]) -> Sensitivity {
    let total: usize = w.iter().map(|&x| x as usize).sum();
    let mut roll = rng.below(total.max(1));
    for (i, &x) in w.iter().enumerate() {
        if roll < x as usize {
            return [
                Sensitivity::Low,
                Sensitivity::Medium,
                Sensitivity::High,
                Sensitivity::Critical,
            ][i];
        }
        roll -= x as usize;
    }
    Sensitivity::Medium
}
