//! Typed ids for campaigns, review items, remediation tasks and offboarding
//! cases, so that a task id passed where a campaign id is expected does not
//! compile. Like `model::SourceId`: an `i64` newtype, serde-transparent (JSON
//! stays a number) and a number in the TypeScript bindings (a hand-written
//! `ts_rs::TS` impl, so `ui/src/bindings.ts` says `number`, not a new type).
//!
//! ```
//! use custodian::campaigns::{CampaignId, TaskId};
//! fn campaign(id: CampaignId) -> i64 { id.0 }
//! assert_eq!(campaign(CampaignId(1)), 1);
//! # let _ = TaskId(2);
//! ```
//!
//! ```compile_fail
//! use custodian::campaigns::{CampaignId, TaskId};
//! fn campaign(id: CampaignId) -> i64 { id.0 }
//! campaign(TaskId(1)); // a task id is not a campaign id
//! ```
//!
//! The store, `ops`, the evidence export, write-back, the CLI arguments and
//! the views take and return these, so the mix-up fails to compile there too:
//!
//! ```no_run
//! use custodian::campaigns::{CampaignId, CaseId, ReviewItemId, TaskId};
//! fn read(store: &custodian::store::Store) -> custodian::Result<()> {
//!     let c: CampaignId = store.campaign(CampaignId(1), chrono::Utc::now())?.id;
//!     let item = store.review_item(ReviewItemId(1))?;
//!     let tasks = store.tasks(Some(item.campaign_id), None)?;
//!     let _: Option<(TaskId, Option<CaseId>)> = tasks.first().map(|t| (t.id, t.case_id));
//!     let _ = (c, store.offboarding_case(CaseId(1))?.summary.id);
//!     Ok(())
//! }
//! ```
//!
//! ```compile_fail
//! use custodian::campaigns::TaskId;
//! fn read(store: &custodian::store::Store) {
//!     let _ = store.campaign(TaskId(1), chrono::Utc::now()); // not a campaign
//! }
//! ```
//!
//! ```compile_fail
//! use custodian::campaigns::{CampaignId, ReviewItemId};
//! fn read(store: &custodian::store::Store) -> custodian::Result<CampaignId> {
//!     // a review item's id is not its campaign's
//!     Ok(store.review_item(ReviewItemId(1))?.id)
//! }
//! ```
//!
//! ```compile_fail
//! use custodian::campaigns::CampaignId;
//! fn open(store: &custodian::store::Store) {
//!     let _ = store.offboarding_case(CampaignId(1)); // a case id is a CaseId
//! }
//! ```
//!
//! The shell's commands take plain numbers from the UI and convert at the
//! command boundary (`CampaignId(id)`); pure rule modules may keep `i64`.

/// Defines an `i64` id newtype with `Display`, `FromStr`, the store's value
/// conversions and a TypeScript `number` binding.
macro_rules! typed_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                s.trim().parse::<i64>().map($name).map_err(|_| {
                    $crate::error::Error::invalid(format!(
                        "'{s}' is not a valid {}",
                        stringify!($name)
                    ))
                })
            }
        }

        impl $crate::store::db::ToValue for $name {
            fn to_value(&self) -> $crate::store::db::Value {
                $crate::store::db::Value::Int(self.0)
            }
        }

        impl $crate::store::db::FromValue for $name {
            fn from_value(v: $crate::store::db::Value) -> std::result::Result<Self, String> {
                <i64 as $crate::store::db::FromValue>::from_value(v).map($name)
            }
        }

        #[cfg(feature = "ts")]
        impl ts_rs::TS for $name {
            type WithoutGenerics = Self;
            type OptionInnerType = Self;
            fn name(cfg: &ts_rs::Config) -> String {
                <i64 as ts_rs::TS>::name(cfg)
            }
            fn inline(cfg: &ts_rs::Config) -> String {
                <i64 as ts_rs::TS>::inline(cfg)
            }
        }
    };
}

typed_id!(
    /// An access-review campaign.
    CampaignId
);
typed_id!(
    /// One item of a campaign (an identity, grant or credential to certify).
    ReviewItemId
);
typed_id!(
    /// A remediation task (from a campaign, an offboarding case or the
    /// lifecycle).
    TaskId
);
typed_id!(
    /// An offboarding case.
    CaseId
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::db::{FromValue, ToValue, Value};

    #[test]
    fn json_is_a_plain_number() {
        assert_eq!(serde_json::to_string(&CampaignId(17)).unwrap(), "17");
        assert_eq!(
            serde_json::from_str::<Vec<ReviewItemId>>("[1,2]").unwrap(),
            [ReviewItemId(1), ReviewItemId(2)]
        );
        assert!(serde_json::from_str::<TaskId>("\"3\"").is_err());
        assert_eq!(
            serde_json::to_string(&Some(CaseId(4))).unwrap(),
            serde_json::to_string(&Some(4i64)).unwrap()
        );
    }

    #[test]
    fn parses_from_text_and_names_the_type_when_it_cannot() {
        assert_eq!(" 42 ".parse::<TaskId>().unwrap(), TaskId(42));
        let e = "forty".parse::<CampaignId>().unwrap_err();
        assert_eq!(e.code, crate::error::ErrorCode::InvalidInput);
        assert_eq!(e.message, "'forty' is not a valid CampaignId");
        assert_eq!(CaseId(9).to_string(), "9");
    }

    #[test]
    fn store_values_are_integers() {
        assert!(matches!(ReviewItemId(5).to_value(), Value::Int(5)));
        assert_eq!(CaseId::from_value(Value::Int(6)).unwrap(), CaseId(6));
        assert!(CaseId::from_value(Value::Text("x".into())).is_err());
    }

    #[cfg(feature = "ts")]
    #[test]
    fn typescript_sees_a_number() {
        use ts_rs::TS;
        let cfg = ts_rs::Config::new().with_large_int("number");
        assert_eq!(CampaignId::name(&cfg), "number");
        assert_eq!(<Option<TaskId>>::name(&cfg), "number | null");
        assert_eq!(<Vec<ReviewItemId>>::inline(&cfg), "Array<number>");
    }
}
