//! People in the cache: finding one by reference or by search, the person
//! acting at this desk (solo mode), and the small lookups the review and
//! offboarding writes share.

use crate::store::db::{params, Db, OptionalExtension};
use chrono::{DateTime, Utc};

use super::audit;
use super::{to_ts, Store};
use crate::error::{Error, Result};
use crate::model::PersonStatus;

pub(crate) fn person_name(tx: &Db, id: i64) -> Result<String> {
    tx.query_row("SELECT display_name FROM people WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .optional()?
    .ok_or_else(|| Error::not_found(format!("no person with id {id}")))
}

pub(crate) fn active_person(tx: &Db, id: i64, role: &str) -> Result<String> {
    let row: Option<(String, PersonStatus)> = tx
        .query_row(
            "SELECT display_name, status FROM people WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Err(Error::not_found(format!(
            "the {role} (person {id}) is not in the cache"
        ))),
        Some((name, PersonStatus::Active)) => Ok(name),
        Some((name, s)) => Err(Error::invalid(format!(
            "the {role} {name} is {}; choose an active person",
            s.as_str()
        ))),
    }
}

impl Store {
    /// A person by id, email, exact name or external id.
    pub fn resolve_person(&self, reference: &str) -> Result<i64> {
        let r = reference.trim();
        if r.is_empty() {
            return Err(Error::invalid(
                "name a person: an id, an email address or a name",
            ));
        }
        if let Ok(id) = r.parse::<i64>() {
            let found: Option<i64> = self
                .db
                .query_row("SELECT id FROM people WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()?;
            if let Some(id) = found {
                return Ok(id);
            }
        }
        let mut st = self.db.prepare_cached(
            "SELECT id FROM people WHERE email = ?1 COLLATE NOCASE
             UNION SELECT id FROM people WHERE display_name = ?1 COLLATE NOCASE
             UNION SELECT id FROM people WHERE external_id = ?1 LIMIT 2",
        )?;
        let ids = st
            .query_map([r], |row| row.get::<i64>(0))?
            .collect::<Result<Vec<_>>>()?;
        match ids.as_slice() {
            [id] => Ok(*id),
            [] => Err(Error::not_found(format!("no person matches '{r}'"))),
            _ => Err(Error::invalid(format!(
                "'{r}' matches several people; use their email or numeric id"
            ))),
        }
    }

    /// People whose name or email contains `search` (active first), for pickers.
    pub fn find_people(&self, search: &str, limit: i64) -> Result<Vec<crate::views::PersonRef>> {
        let pat = format!(
            "%{}%",
            search
                .trim()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let ids: Vec<i64> = {
            let mut st = self.db.prepare_cached(
                "SELECT id FROM people WHERE display_name LIKE ?1 ESCAPE '\\' OR email LIKE ?1 ESCAPE '\\'
                 ORDER BY status <> 'active', display_name COLLATE NOCASE LIMIT ?2",
            )?;
            let v = st
                .query_map(params![pat, limit.clamp(1, 200)], |r| r.get(0))?
                .collect::<Result<Vec<_>>>()?;
            v
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(p) = self.person_ref(id)? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// The person using Custodian, when chosen.
    pub fn acting_person(&self) -> Result<Option<i64>> {
        let v = self.meta("acting_person_id")?;
        Ok(v.and_then(|s| s.parse().ok()))
    }

    pub fn set_acting_person(&mut self, person: i64, now: DateTime<Utc>) -> Result<()> {
        let tx = self.db.transaction()?;
        let name = active_person(&tx, person, "acting person")?;
        tx.execute(
            "INSERT INTO meta(key, value) VALUES ('acting_person_id', ?1)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [person.to_string()],
        )?;
        audit::append(
            &tx,
            to_ts(now),
            &name,
            "settings.acting_person",
            &name,
            &serde_json::json!({"person_id": person}),
        )?;
        tx.commit()?;
        Ok(())
    }
}
