//! Turning version percents into per-server weights and weights back into percents, so
//! that what a router reads back maps to exactly the percents that were asked for.

use crate::{RouterError, Weights};

/// Splits `total` units in proportion to `shares` by the largest-remainder method: the
/// result sums to `total` exactly (unless every share is zero, then all are zero), a zero
/// share gets zero, and each result is within one unit of its exact proportion.
pub fn apportion(shares: &[u64], total: u64) -> Vec<u64> {
    let sum: u64 = shares.iter().sum();
    if sum == 0 {
        return vec![0; shares.len()];
    }
    // Exact integer arithmetic: share * total / sum as quotient and remainder.
    let mut result: Vec<u64> = shares.iter().map(|share| share * total / sum).collect();
    let mut remainders: Vec<(u64, usize)> = shares
        .iter()
        .enumerate()
        .map(|(index, share)| ((share * total) % sum, index))
        .collect();
    let given: u64 = result.iter().sum();
    // Largest remainder first; ties go to the earlier group so the result is stable.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, index) in remainders.into_iter().take((total - given) as usize) {
        result[index] += 1;
    }
    result
}

/// Splits `total` over `count` parts as evenly as possible (earlier parts get the extra).
pub fn split_evenly(total: u64, count: usize) -> Vec<u64> {
    if count == 0 {
        return Vec::new();
    }
    let count_u = count as u64;
    (0..count_u)
        .map(|index| total / count_u + u64::from(index < total % count_u))
        .collect()
}

/// Percents per group from the traffic weight each group carries in total.
pub fn percents_from_totals(totals: &[(String, u64)]) -> Weights {
    let shares: Vec<u64> = totals.iter().map(|(_, total)| *total).collect();
    totals
        .iter()
        .map(|(group, _)| group.clone())
        .zip(apportion(&shares, 100))
        .map(|(group, percent)| (group, percent as u32))
        .collect()
}

/// Checks a wanted split against the router's groups: every named group must exist, the
/// percents must sum to 100; groups not named get 0. Returns the complete split.
pub fn complete<'a>(
    wanted: &Weights,
    groups: impl IntoIterator<Item = &'a str>,
) -> Result<Weights, RouterError> {
    let mut complete: Weights = groups
        .into_iter()
        .map(|group| (group.to_string(), 0))
        .collect();
    for (group, percent) in wanted {
        match complete.get_mut(group) {
            Some(slot) => *slot = *percent,
            None => {
                let known: Vec<&str> = complete.keys().map(String::as_str).collect();
                return Err(RouterError::Refused(format!(
                    "unknown version group `{group}`; this router has {}",
                    known.join(", ")
                )));
            }
        }
    }
    let sum: u32 = complete.values().sum();
    if sum != 100 {
        return Err(RouterError::Refused(format!(
            "weights {wanted:?} sum to {sum}, not 100"
        )));
    }
    Ok(complete)
}

/// Whether two splits agree, counting a missing group as 0.
pub fn same(a: &Weights, b: &Weights) -> bool {
    let get = |weights: &Weights, key: &str| weights.get(key).copied().unwrap_or(0);
    a.keys()
        .chain(b.keys())
        .all(|key| get(a, key) == get(b, key))
}

/// Parses `group=weight` pairs separated by commas, spaces or new lines.
pub fn parse_pairs(text: &str) -> Result<Weights, String> {
    let mut weights = Weights::new();
    for pair in text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
    {
        let (group, weight) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not `group=weight`"))?;
        let weight: u32 = weight
            .trim()
            .parse()
            .map_err(|_| format!("`{pair}`: the weight is not a whole number"))?;
        if weights.insert(group.trim().to_string(), weight).is_some() {
            return Err(format!("group `{group}` is listed twice"));
        }
    }
    Ok(weights)
}

/// `canary=5,stable=95`: the form commands receive and print.
pub fn format_pairs(weights: &Weights) -> String {
    weights
        .iter()
        .map(|(group, weight)| format!("{group}={weight}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weights(pairs: &[(&str, u32)]) -> Weights {
        pairs.iter().map(|(g, w)| (g.to_string(), *w)).collect()
    }

    #[test]
    fn apportion_sums_exactly_and_keeps_zero() {
        assert_eq!(apportion(&[5, 95], 256), vec![13, 243]);
        assert_eq!(apportion(&[0, 100], 256), vec![0, 256]);
        assert_eq!(apportion(&[33, 33, 34], 256), vec![85, 84, 87]);
        assert_eq!(apportion(&[0, 0], 256), vec![0, 0]);
        for a in 0..=100u64 {
            for b in 0..=(100 - a) {
                let c = 100 - a - b;
                let parts = apportion(&[a, b, c], 256);
                assert_eq!(parts.iter().sum::<u64>(), 256);
                // Reading the weights back gives the percents that were asked for.
                assert_eq!(apportion(&parts, 100), vec![a, b, c], "{a} {b} {c}");
                for (percent, part) in [a, b, c].iter().zip(&parts) {
                    assert_eq!(*percent == 0, *part == 0);
                }
            }
        }
    }

    #[test]
    fn split_evenly_gives_extra_to_the_first() {
        assert_eq!(split_evenly(13, 3), vec![5, 4, 4]);
        assert_eq!(split_evenly(2, 3), vec![1, 1, 0]);
        assert_eq!(split_evenly(7, 0), Vec::<u64>::new());
    }

    #[test]
    fn complete_fills_zeros_and_refuses_nonsense() {
        let groups = ["stable", "canary"];
        assert_eq!(
            complete(&weights(&[("stable", 100)]), groups).unwrap(),
            weights(&[("stable", 100), ("canary", 0)])
        );
        let unknown = complete(&weights(&[("blue", 100)]), groups).unwrap_err();
        assert!(
            unknown.to_string().contains("unknown version group `blue`"),
            "{unknown}"
        );
        let sum = complete(&weights(&[("stable", 90), ("canary", 5)]), groups).unwrap_err();
        assert!(sum.to_string().contains("sum to 95"), "{sum}");
    }

    #[test]
    fn pairs_round_trip() {
        let w = weights(&[("stable", 95), ("canary", 5)]);
        assert_eq!(format_pairs(&w), "canary=5,stable=95");
        assert_eq!(parse_pairs("canary=5,stable=95").unwrap(), w);
        assert_eq!(parse_pairs("stable=95\ncanary=5\n").unwrap(), w);
        assert!(parse_pairs("stable 95").is_err());
        assert!(parse_pairs("stable=x").is_err());
        assert!(parse_pairs("a=1 a=2").is_err());
        assert!(same(
            &weights(&[("stable", 100)]),
            &weights(&[("stable", 100), ("canary", 0)])
        ));
        assert!(!same(
            &weights(&[("stable", 100)]),
            &weights(&[("canary", 100)])
        ));
    }
}
