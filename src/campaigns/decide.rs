//! What a reviewer may decide on one item, and where the decision goes next.
//! A pure rule over plain data; `store::campaigns::decide` reads each item's
//! facts, asks [`check`], and writes the outcome, all in one transaction.
//!
//! - Only an active campaign takes decisions, and only from the item's
//!   current reviewer.
//! - The decision must apply to the item type.
//! - A revoke or retire needs a justification; so does keeping a high-risk
//!   item.
//! - A reassignment needs a new owner who is not the current one.
//! - Two people: with a second stage, stage one only proposes and the item
//!   moves to the second reviewer, or to the fallback reviewer when the
//!   second reviewer is the one proposing.

use super::{CampaignStatus, Decision, ItemType};
use crate::error::{Error, Result};

/// High risk (see `campaigns::recommend`).
pub const HIGH_RISK: i64 = 3;

/// The campaign as the rule needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignFacts {
    pub name: String,
    pub status: CampaignStatus,
    /// The campaign owner: the last person a second stage can go to.
    pub owner: i64,
    pub fallback: i64,
    /// The second-stage reviewer, when the campaign has a second stage.
    pub second: Option<i64>,
}

/// One item as the rule needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemFacts {
    pub id: i64,
    pub subject: String,
    pub item_type: ItemType,
    pub reviewer: Option<i64>,
    /// The reviewer's name, for the refusal.
    pub reviewer_name: Option<String>,
    pub stage: i64,
    pub recommendation: Decision,
    pub risk: i64,
    /// The identity's current owner.
    pub owner: Option<i64>,
}

/// What the reviewer asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request<'a> {
    pub actor: i64,
    pub actor_name: &'a str,
    pub decision: Decision,
    /// Trimmed.
    pub justification: &'a str,
    pub new_owner: Option<i64>,
    pub follow_recommendation: bool,
}

/// Where the decision goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// The decision is final.
    Final,
    /// Stage one proposed it: this person confirms.
    SecondStage { reviewer: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub decision: Decision,
    pub new_owner: Option<i64>,
    pub next: Next,
}

/// Applies the rules to one item; an error names the item and what is wrong.
pub fn check(camp: &CampaignFacts, item: &ItemFacts, req: &Request<'_>) -> Result<Outcome> {
    let id = item.id;
    let subject = &item.subject;
    if camp.status != CampaignStatus::Active {
        return Err(Error::invalid(format!(
            "item {id} belongs to campaign '{}', which is {}: decisions are closed",
            camp.name,
            camp.status.as_str()
        )));
    }
    if item.reviewer != Some(req.actor) {
        let who = match (&item.reviewer, &item.reviewer_name) {
            (Some(_), Some(n)) => n.as_str(),
            (Some(_), None) => "someone unknown",
            (None, _) => "nobody",
        };
        return Err(Error::invalid(format!(
            "item {id} ({subject}) is assigned to {who}, not to {}",
            req.actor_name
        )));
    }
    let decision = if req.follow_recommendation {
        item.recommendation
    } else {
        req.decision
    };
    let allowed = Decision::allowed_for(item.item_type);
    if !allowed.contains(&decision) {
        return Err(Error::invalid(format!(
            "'{}' does not apply to a {} item ({subject}); choose one of: {}",
            decision.as_str(),
            item.item_type.as_str(),
            allowed
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let unjustified = req.justification.is_empty();
    if matches!(decision, Decision::Revoke | Decision::Retire) && unjustified {
        return Err(Error::invalid(format!(
            "a justification is required to {} item {id} ({subject})",
            decision.as_str()
        )));
    }
    if decision == Decision::Keep && item.risk >= HIGH_RISK && unjustified {
        return Err(Error::invalid(format!(
            "item {id} ({subject}) is high risk: keeping it needs a justification"
        )));
    }
    let new_owner = if decision == Decision::Reassign {
        let o = req.new_owner.ok_or_else(|| {
            Error::invalid(format!(
                "reassigning item {id} ({subject}) needs the new owner"
            ))
        })?;
        if Some(o) == item.owner {
            return Err(Error::invalid(format!(
                "{subject} is already owned by that person"
            )));
        }
        Some(o)
    } else {
        None
    };
    let next = match camp.second.filter(|_| item.stage == 1) {
        // The second reviewer never confirms their own proposal: the
        // fallback does, else the campaign owner; when all three are the
        // proposer there is nobody to confirm it.
        Some(s) if s == req.actor => {
            let other = [camp.fallback, camp.owner]
                .into_iter()
                .find(|p| *p != req.actor)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "item {} ({}) needs a second person to confirm it, and you are the second-stage reviewer, \
                         the fallback and the owner of '{}': name another second-stage or fallback reviewer",
                        item.id, item.subject, camp.name
                    ))
                })?;
            Next::SecondStage { reviewer: other }
        }
        Some(s) => Next::SecondStage { reviewer: s },
        None => Next::Final,
    };
    Ok(Outcome {
        decision,
        new_owner,
        next,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ME: i64 = 10;

    fn camp() -> CampaignFacts {
        CampaignFacts {
            name: "Q4".into(),
            status: CampaignStatus::Active,
            owner: 5,
            fallback: 4,
            second: None,
        }
    }

    fn item(t: ItemType) -> ItemFacts {
        ItemFacts {
            id: 7,
            subject: "bot".into(),
            item_type: t,
            reviewer: Some(ME),
            reviewer_name: Some("Me".into()),
            stage: 1,
            recommendation: Decision::Keep,
            risk: 1,
            owner: Some(20),
        }
    }

    fn req(decision: Decision, justification: &str) -> Request<'_> {
        Request {
            actor: ME,
            actor_name: "Me",
            decision,
            justification,
            new_owner: None,
            follow_recommendation: false,
        }
    }

    fn refusal(c: &CampaignFacts, i: &ItemFacts, r: &Request<'_>) -> String {
        check(c, i, r).unwrap_err().message
    }

    #[test]
    fn a_plain_keep_is_final() {
        let o = check(&camp(), &item(ItemType::Grant), &req(Decision::Keep, "")).unwrap();
        assert_eq!(
            o,
            Outcome {
                decision: Decision::Keep,
                new_owner: None,
                next: Next::Final
            }
        );
    }

    #[test]
    fn only_active_campaigns_take_decisions() {
        for s in [CampaignStatus::Closed, CampaignStatus::Scheduled] {
            let c = CampaignFacts {
                status: s,
                ..camp()
            };
            let m = refusal(&c, &item(ItemType::Grant), &req(Decision::Keep, ""));
            assert!(m.contains("decisions are closed"), "{m}");
        }
    }

    #[test]
    fn only_the_assigned_reviewer_decides() {
        let mut i = item(ItemType::Grant);
        i.reviewer = Some(11);
        i.reviewer_name = Some("Ann".into());
        let m = refusal(&camp(), &i, &req(Decision::Keep, ""));
        assert_eq!(m, "item 7 (bot) is assigned to Ann, not to Me");
        i.reviewer = None;
        i.reviewer_name = None;
        let m = refusal(&camp(), &i, &req(Decision::Keep, ""));
        assert_eq!(m, "item 7 (bot) is assigned to nobody, not to Me");
    }

    #[test]
    fn the_decision_must_apply_to_the_item_type() {
        let m = refusal(&camp(), &item(ItemType::Grant), &req(Decision::Retire, "x"));
        assert!(m.contains("choose one of: keep, revoke"), "{m}");
        let m = refusal(
            &camp(),
            &item(ItemType::Identity),
            &req(Decision::Rotate, "x"),
        );
        assert!(
            m.contains("'rotate' does not apply to a identity item"),
            "{m}"
        );
    }

    #[test]
    fn following_the_recommendation_decides_the_recommendation() {
        let mut i = item(ItemType::Credential);
        i.recommendation = Decision::Rotate;
        let r = Request {
            follow_recommendation: true,
            ..req(Decision::Keep, "")
        };
        assert_eq!(check(&camp(), &i, &r).unwrap().decision, Decision::Rotate);
        // And the recommendation meets the same rules.
        i.recommendation = Decision::Revoke;
        assert!(refusal(&camp(), &i, &r).contains("justification is required"));
    }

    #[test]
    fn revoke_and_retire_need_a_justification() {
        let m = refusal(&camp(), &item(ItemType::Grant), &req(Decision::Revoke, ""));
        assert_eq!(m, "a justification is required to revoke item 7 (bot)");
        let m = refusal(
            &camp(),
            &item(ItemType::Identity),
            &req(Decision::Retire, ""),
        );
        assert_eq!(m, "a justification is required to retire item 7 (bot)");
        let o = check(
            &camp(),
            &item(ItemType::Grant),
            &req(Decision::Revoke, "unused"),
        )
        .unwrap();
        assert_eq!(o.decision, Decision::Revoke);
        // Rotating needs none.
        assert!(check(
            &camp(),
            &item(ItemType::Credential),
            &req(Decision::Rotate, "")
        )
        .is_ok());
    }

    #[test]
    fn keeping_a_high_risk_item_needs_a_justification() {
        let mut i = item(ItemType::Grant);
        i.risk = HIGH_RISK;
        let m = refusal(&camp(), &i, &req(Decision::Keep, ""));
        assert_eq!(
            m,
            "item 7 (bot) is high risk: keeping it needs a justification"
        );
        assert!(check(&camp(), &i, &req(Decision::Keep, "needed for payroll")).is_ok());
        // Medium risk does not.
        i.risk = HIGH_RISK - 1;
        assert!(check(&camp(), &i, &req(Decision::Keep, "")).is_ok());
    }

    #[test]
    fn a_reassignment_needs_a_new_owner_who_is_not_the_current_one() {
        let i = item(ItemType::Identity);
        let m = refusal(&camp(), &i, &req(Decision::Reassign, ""));
        assert_eq!(m, "reassigning item 7 (bot) needs the new owner");
        let r = Request {
            new_owner: Some(20),
            ..req(Decision::Reassign, "")
        };
        assert_eq!(
            refusal(&camp(), &i, &r),
            "bot is already owned by that person"
        );
        let r = Request {
            new_owner: Some(21),
            ..req(Decision::Reassign, "")
        };
        assert_eq!(check(&camp(), &i, &r).unwrap().new_owner, Some(21));
        // Other decisions carry no new owner even when one is given.
        let r = Request {
            new_owner: Some(21),
            ..req(Decision::Keep, "")
        };
        assert_eq!(check(&camp(), &i, &r).unwrap().new_owner, None);
    }

    #[test]
    fn with_a_second_stage_stage_one_proposes_to_the_second_reviewer() {
        let c = CampaignFacts {
            second: Some(30),
            ..camp()
        };
        let o = check(&c, &item(ItemType::Grant), &req(Decision::Keep, "")).unwrap();
        assert_eq!(o.next, Next::SecondStage { reviewer: 30 });
        // Stage two is final.
        let mut i = item(ItemType::Grant);
        i.stage = 2;
        assert_eq!(
            check(&c, &i, &req(Decision::Keep, "")).unwrap().next,
            Next::Final
        );
    }

    #[test]
    fn the_second_reviewer_never_confirms_their_own_proposal() {
        let c = CampaignFacts {
            second: Some(ME),
            ..camp()
        };
        let o = check(&c, &item(ItemType::Grant), &req(Decision::Keep, "")).unwrap();
        assert_eq!(o.next, Next::SecondStage { reviewer: 4 });
    }

    #[test]
    fn a_proposal_by_the_second_reviewer_who_is_also_the_fallback_goes_to_the_owner() {
        let c = CampaignFacts {
            second: Some(ME),
            fallback: ME,
            ..camp()
        };
        let o = check(&c, &item(ItemType::Grant), &req(Decision::Keep, "")).unwrap();
        assert_eq!(o.next, Next::SecondStage { reviewer: 5 });
    }

    #[test]
    fn nobody_left_to_confirm_refuses_the_proposal() {
        let c = CampaignFacts {
            second: Some(ME),
            fallback: ME,
            owner: ME,
            ..camp()
        };
        let m = refusal(&c, &item(ItemType::Grant), &req(Decision::Keep, ""));
        assert!(m.contains("needs a second person"), "{m}");
    }
}
