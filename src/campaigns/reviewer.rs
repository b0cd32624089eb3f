//! Who reviews an item: the campaign's reviewer rule applied to the facts of
//! one item. A pure rule over plain data; `store::campaigns` reads the people
//! and the item, asks [`resolve`], and writes the item, inside the launch's
//! transaction.
//!
//! - The rule's candidate (owner, owner's manager, resource owner for grants,
//!   the named reviewer) reviews when known and active.
//! - Nobody, an unknown or an inactive candidate: the fallback reviewer.
//! - No self-review: a candidate who built the identity hands it to their
//!   own (active) manager, else to the fallback; a fallback who built it
//!   hands it to the campaign owner (unless they are the campaign owner).

use std::collections::HashMap;

use super::{ItemType, ReviewerRule};
use crate::model::PersonStatus;

/// What the rule needs to know of a person.
#[derive(Debug, Clone, PartialEq)]
pub struct Person {
    pub name: String,
    pub status: PersonStatus,
    pub manager: Option<i64>,
}

/// The facts of one item and its campaign.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReviewerFacts {
    pub rule: ReviewerRule,
    pub item_type: ItemType,
    /// The identity's owner.
    pub owner: Option<i64>,
    /// Who built the identity.
    pub builder: Option<i64>,
    /// Grants: the owner of the resource.
    pub resource_owner: Option<i64>,
    /// The campaign's named reviewer.
    pub named: Option<i64>,
    pub fallback: i64,
    pub campaign_owner: i64,
}

/// The reviewer of an item and why (shown to the reviewer and the owner).
pub fn resolve(people: &HashMap<i64, Person>, f: &ReviewerFacts) -> (i64, String) {
    let (candidate, what) = match f.rule {
        ReviewerRule::Owner => (f.owner, "owner"),
        ReviewerRule::OwnerManager => (
            f.owner.and_then(|o| people.get(&o)).and_then(|p| p.manager),
            "owner's manager",
        ),
        ReviewerRule::ResourceOwner if f.item_type == ItemType::Grant => {
            (f.resource_owner, "resource owner")
        }
        ReviewerRule::ResourceOwner => (f.owner, "owner"),
        ReviewerRule::Named => (f.named, "named reviewer"),
    };
    let to_fallback = |why: String| -> (i64, String) {
        if Some(f.fallback) == f.builder && f.campaign_owner != f.fallback {
            (
                f.campaign_owner,
                format!("campaign owner: {why}, and the fallback reviewer built this identity"),
            )
        } else {
            (f.fallback, format!("fallback: {why}"))
        }
    };
    let Some(c) = candidate else {
        return to_fallback(format!("no {what}"));
    };
    let Some(p) = people.get(&c) else {
        return to_fallback(format!("the {what} is unknown"));
    };
    if p.status != PersonStatus::Active {
        return to_fallback(format!("the {what} {} is {}", p.name, p.status.as_str()));
    }
    if Some(c) == f.builder {
        // No self-review: the builder's manager, else the fallback.
        if let Some(m) = p.manager.filter(|m| *m != c) {
            if people
                .get(&m)
                .is_some_and(|mp| mp.status == PersonStatus::Active)
            {
                return (
                    m,
                    format!(
                        "builder's manager: the {what} {} built this identity (no self-review)",
                        p.name
                    ),
                );
            }
        }
        return to_fallback(format!(
            "the {what} {} built this identity (no self-review)",
            p.name
        ));
    }
    (c, what.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1 owner (manager 2), 2 manager, 3 departed, 4 fallback, 5 campaign
    // owner, 6 resource owner, 7 named, 8 owner whose manager departed,
    // 9 owner who is their own manager.
    fn people() -> HashMap<i64, Person> {
        let p = |name: &str, status, manager| Person {
            name: name.into(),
            status,
            manager,
        };
        HashMap::from([
            (1, p("Olga", PersonStatus::Active, Some(2))),
            (2, p("Max", PersonStatus::Active, None)),
            (3, p("Dora", PersonStatus::Departed, None)),
            (4, p("Fay", PersonStatus::Active, None)),
            (5, p("Cam", PersonStatus::Active, None)),
            (6, p("Rex", PersonStatus::Active, None)),
            (7, p("Ned", PersonStatus::Active, None)),
            (8, p("Otto", PersonStatus::Active, Some(3))),
            (9, p("Sol", PersonStatus::Active, Some(9))),
        ])
    }

    fn facts(rule: ReviewerRule) -> ReviewerFacts {
        ReviewerFacts {
            rule,
            item_type: ItemType::Identity,
            owner: Some(1),
            builder: None,
            resource_owner: Some(6),
            named: Some(7),
            fallback: 4,
            campaign_owner: 5,
        }
    }

    fn who(f: &ReviewerFacts) -> (i64, String) {
        resolve(&people(), f)
    }

    #[test]
    fn each_rule_names_its_candidate() {
        assert_eq!(who(&facts(ReviewerRule::Owner)), (1, "owner".into()));
        assert_eq!(
            who(&facts(ReviewerRule::OwnerManager)),
            (2, "owner's manager".into())
        );
        assert_eq!(
            who(&facts(ReviewerRule::Named)),
            (7, "named reviewer".into())
        );
        let mut f = facts(ReviewerRule::ResourceOwner);
        f.item_type = ItemType::Grant;
        assert_eq!(who(&f), (6, "resource owner".into()));
    }

    #[test]
    fn resource_owner_rule_gives_identities_and_credentials_to_the_owner() {
        for t in [ItemType::Identity, ItemType::Credential] {
            let mut f = facts(ReviewerRule::ResourceOwner);
            f.item_type = t;
            assert_eq!(who(&f), (1, "owner".into()), "{t:?}");
        }
    }

    #[test]
    fn nobody_goes_to_the_fallback() {
        let mut f = facts(ReviewerRule::Owner);
        f.owner = None;
        assert_eq!(who(&f), (4, "fallback: no owner".into()));
        // The owner's manager of an owner without a manager.
        let mut f = facts(ReviewerRule::OwnerManager);
        f.owner = Some(2);
        assert_eq!(who(&f), (4, "fallback: no owner's manager".into()));
        let mut f = facts(ReviewerRule::ResourceOwner);
        f.item_type = ItemType::Grant;
        f.resource_owner = None;
        assert_eq!(who(&f), (4, "fallback: no resource owner".into()));
    }

    #[test]
    fn an_unknown_candidate_goes_to_the_fallback() {
        let mut f = facts(ReviewerRule::Owner);
        f.owner = Some(99);
        assert_eq!(who(&f), (4, "fallback: the owner is unknown".into()));
    }

    #[test]
    fn an_inactive_candidate_goes_to_the_fallback() {
        let mut f = facts(ReviewerRule::Owner);
        f.owner = Some(3);
        assert_eq!(who(&f), (4, "fallback: the owner Dora is departed".into()));
        let mut f = facts(ReviewerRule::OwnerManager);
        f.owner = Some(8);
        assert_eq!(
            who(&f),
            (4, "fallback: the owner's manager Dora is departed".into())
        );
    }

    #[test]
    fn a_builder_never_reviews_their_identity_their_manager_does() {
        let mut f = facts(ReviewerRule::Owner);
        f.builder = Some(1);
        assert_eq!(
            who(&f),
            (
                2,
                "builder's manager: the owner Olga built this identity (no self-review)".into()
            )
        );
    }

    #[test]
    fn a_builder_without_an_active_manager_goes_to_the_fallback() {
        // Manager departed.
        let mut f = facts(ReviewerRule::Owner);
        f.owner = Some(8);
        f.builder = Some(8);
        assert_eq!(
            who(&f),
            (
                4,
                "fallback: the owner Otto built this identity (no self-review)".into()
            )
        );
        // Their own manager does not count.
        f.owner = Some(9);
        f.builder = Some(9);
        assert_eq!(who(&f).0, 4);
        // No manager.
        let mut f = facts(ReviewerRule::Named);
        f.builder = Some(7);
        assert_eq!(who(&f).0, 4);
    }

    #[test]
    fn a_fallback_who_built_it_hands_it_to_the_campaign_owner() {
        let mut f = facts(ReviewerRule::Owner);
        f.owner = None;
        f.builder = Some(4);
        assert_eq!(
            who(&f),
            (
                5,
                "campaign owner: no owner, and the fallback reviewer built this identity".into()
            )
        );
        // Unless the fallback is the campaign owner: nobody else is left.
        f.campaign_owner = 4;
        assert_eq!(who(&f), (4, "fallback: no owner".into()));
    }
}
