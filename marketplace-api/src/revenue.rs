//! Revenue share: a contract's revenue for a period split among the tenants whose
//! releases the buyer accessed in it, in proportion to their records.
//!
//! Rounding rule (largest remainder): each opted-in tenant gets the floor of its exact
//! share; the platform line gets the floor of the share of tenants who did not opt in;
//! the minor units left over go one each to the largest remainders, ties to the tenant
//! first by id, the platform last. So a period's lines add up exactly to the revenue. A
//! period in which nothing was accessed books the whole revenue to the platform.

use catalog::market::{PLATFORM, split_proportionally};

/// One tenant's records in the releases accessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    pub tenant: String,
    pub records: u64,
    /// The tenant's consent opts into the revenue share.
    pub opted_in: bool,
}

/// One line of a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub tenant: String,
    pub records: u64,
    pub amount_minor: u64,
}

/// Splits `revenue` over `contributions` (tenants sorted by id, each once) by the rule
/// in the module docs.
#[must_use]
pub fn allocate(revenue: u64, contributions: &[Contribution]) -> Vec<Share> {
    let mut lines: Vec<Share> = contributions
        .iter()
        .filter(|c| c.opted_in && c.records > 0)
        .map(|c| Share {
            tenant: c.tenant.clone(),
            records: c.records,
            amount_minor: 0,
        })
        .collect();
    let platform_records: u64 = contributions
        .iter()
        .filter(|c| !c.opted_in)
        .map(|c| c.records)
        .sum();
    let mut weights: Vec<u64> = lines.iter().map(|l| l.records).collect();
    weights.push(platform_records);
    if weights.iter().all(|&w| w == 0) {
        // Nothing accessed: the platform keeps the period's revenue.
        *weights.last_mut().unwrap_or(&mut 0) = 1;
    }
    let parts = split_proportionally(revenue, &weights);
    for (line, part) in lines.iter_mut().zip(&parts) {
        line.amount_minor = *part;
    }
    let platform = parts.last().copied().unwrap_or(revenue);
    if platform > 0 || lines.is_empty() {
        lines.push(Share {
            tenant: PLATFORM.to_owned(),
            records: platform_records,
            amount_minor: platform,
        });
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(tenant: &str, records: u64, opted_in: bool) -> Contribution {
        Contribution {
            tenant: tenant.into(),
            records,
            opted_in,
        }
    }

    #[test]
    fn shares_follow_records_and_leftovers_follow_the_rule() {
        let lines = allocate(
            100,
            &[c("t-1", 1, true), c("t-2", 1, true), c("t-3", 1, true)],
        );
        let amounts: Vec<_> = lines
            .iter()
            .map(|l| (l.tenant.as_str(), l.amount_minor))
            .collect();
        assert_eq!(amounts, vec![("t-1", 34), ("t-2", 33), ("t-3", 33)]);
        let lines = allocate(1000, &[c("t-1", 300, true), c("t-2", 700, false)]);
        let amounts: Vec<_> = lines
            .iter()
            .map(|l| (l.tenant.as_str(), l.amount_minor))
            .collect();
        assert_eq!(amounts, vec![("t-1", 300), (PLATFORM, 700)]);
        let lines = allocate(999, &[]);
        assert_eq!(lines.len(), 1);
        assert_eq!(
            (lines[0].tenant.as_str(), lines[0].amount_minor),
            (PLATFORM, 999)
        );
    }

    proptest! {
        #[test]
        fn shares_add_up_exactly_and_stay_within_one_unit_of_proportional(
            revenue in 0_u64..=u64::MAX / 2,
            mix in proptest::collection::vec((0_u64..=1_000_000_000_000, any::<bool>()), 0..40),
        ) {
            let contributions: Vec<Contribution> = mix
                .iter()
                .enumerate()
                .map(|(i, &(records, opted_in))| c(&format!("t-{i:03}"), records, opted_in))
                .collect();
            let lines = allocate(revenue, &contributions);
            let total: u128 = lines.iter().map(|l| u128::from(l.amount_minor)).sum();
            prop_assert_eq!(total, u128::from(revenue));
            let all: u128 = contributions.iter().map(|c| u128::from(c.records)).sum();
            for line in lines.iter().filter(|l| l.tenant != PLATFORM) {
                let exact = u128::from(revenue) * u128::from(line.records);
                let got = u128::from(line.amount_minor) * all;
                // |amount - revenue * records / all| < 1
                prop_assert!(got + all > exact && got < exact + all, "{line:?}");
                prop_assert!(contributions.iter().any(|c| c.tenant == line.tenant && c.opted_in));
            }
        }
    }
}
